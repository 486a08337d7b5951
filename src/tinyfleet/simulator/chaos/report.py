"""A chaos run's report: JSON (stable keys; `outcome` depends only on the seed) and a human summary."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from tinyfleet.simulator.chaos.invariants import INVARIANTS
from tinyfleet.simulator.chaos.runner import RunResult
from tinyfleet.simulator.chaos.scenarios import WorldEvent


def _applies(name: str, r: RunResult) -> bool:
    if name == "drift-falls":
        return r.scenario.name == "drift"
    if name == "restart-happened":
        return r.scenario.event is not WorldEvent.NONE
    return True


def to_json(r: RunResult) -> dict[str, Any]:
    final = sorted((d.device_id, d.running or "-", d.last_report_state or "-") for d in r.facts.devices)
    by_bundle: dict[str, int] = {}
    for _id, bundle, _state in final:
        by_bundle[bundle] = by_bundle.get(bundle, 0) + 1
    failed = {v.invariant for v in r.violations}
    rollouts = [{k: v for k, v in ro.items() if k != "devices"} for ro in r.rollouts]
    outcome = {
        "rollouts": rollouts,
        "devices_by_bundle": dict(sorted(by_bundle.items())),
        "invariants": {n: ("fail" if n in failed else "pass") if _applies(n, r) else "n/a" for n in INVARIANTS},
        "violations": [{"invariant": v.invariant, "subject": v.subject, "detail": v.detail} for v in r.violations],
    }
    if r.drift:
        # The scores after recalibration depend on when, in simulated time, each device installed its bundle,
        # which follows the server's wall-clock rollout pace: they are reported apart from the outcome (their
        # verdict, drift-falls, is in it).
        outcome["drift"] = {k: v for k, v in r.drift.items() if not k.endswith("_for_check") and k != "after"}
    outcome["digest"] = hashlib.sha256(json.dumps([final, outcome], sort_keys=True).encode()).hexdigest()
    return {
        "scenario": r.scenario.name,
        "summary": r.scenario.summary,
        "seed": r.seed,
        "devices": r.devices,
        "passed": r.passed,
        "expected": r.scenario.expect.value if r.scenario.name != "drift" else "recalibrated",
        "outcome": outcome,
        "activity": r.activity,
        "timing": r.timing,
        **({"drift_after": r.drift.get("after", {})} if r.drift else {}),
        **({"restart": r.restart} if r.restart else {}),
    }


def print_human(report: dict[str, Any], console: Console) -> None:
    ok = report["passed"]
    verdict = "[green]PASSED[/green]" if ok else "[red]FAILED[/red]"
    console.print(f"[b]chaos {report['scenario']}[/b]  {report['devices']} devices, seed {report['seed']}: {verdict}")
    console.print(f"  {report['summary']}")
    out = report["outcome"]
    t = Table(title="rollouts", title_justify="left")
    for col in ("id", "bundle", "state", "stage", "succeeded", "failed", "rolled back", "reason"):
        t.add_column(col)
    for ro in out["rollouts"]:
        c = ro["counts"]
        t.add_row(str(ro["id"]), ro["bundle"], ro["state"], str(ro.get("stage_index", 0) + 1), str(c["succeeded"]),
                  str(c["failed"]), str(c["rolled_back"]), (ro.get("reason") or "")[:60])  # fmt: skip
    console.print(t)
    inv = Table(title="invariants", title_justify="left")
    inv.add_column("invariant")
    inv.add_column("result")
    for name, res in out["invariants"].items():
        inv.add_row(name, {"pass": "[green]pass[/green]", "fail": "[red]FAIL[/red]"}.get(res, res))
    console.print(inv)
    for v in out["violations"][:20]:
        console.print(f"  [red]{v['invariant']}[/red] {v['subject']}: {v['detail']}")
    if len(out["violations"]) > 20:
        console.print(f"  ... and {len(out['violations']) - 20} more violations (see the JSON report)")
    a = report["activity"]
    console.print(f"  devices by bundle: {out['devices_by_bundle']}")
    console.print(f"  activity: {a['power_cuts']} power cuts, {a['corrupted_blocks']} corrupted blocks, "
                  f"network faults {a['network_faults']}, {a['reports_sent']} state reports, "
                  f"{a['inferences']} inferences on {a['interpreters']} interpreter(s)")  # fmt: skip
    if "drift" in out:
        d = out["drift"]
        console.print(f"  drift: {len(d['cohort'])} sensors aged, {len(d['flagged'])} flagged and recalibrated")
        for k in d["flagged"]:
            console.print(f"    {k}: {d['reference'].get(k, '-')} -> {d['drifted'][k]} -> after calibration "
                          f"{report.get('drift_after', {}).get(k, '-')}")  # fmt: skip
    if "restart" in report:
        e = report["restart"]
        console.print(f"  {e['event']} at {e['began_at']}: PIDs {e['pids_before']} -> {e['pids_after']}, "
                      f"{e['devices_dropped']} of {e['devices_online_before']} connections dropped, "
                      f"{e['devices_reconnected']} of {e['devices_online_after']} online devices "
                      "reconnected")  # fmt: skip
    tm = report["timing"]
    console.print(f"  wall {tm['wall_s']} s, simulated {tm['simulated_s']:.0f} s; outcome digest {out['digest'][:16]}")
