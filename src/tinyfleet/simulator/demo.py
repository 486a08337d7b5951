"""`fleet-sim demo`: the product's story on 200 simulated devices of both hardware classes, in a few minutes.

1. A fleet-server (its own Mosquitto, SQLite) starts; 200 devices (60 % ESP32-S3, 40 % STM32L4) are
   provisioned through its API and boot the factory bundle vibration-1.0.0.
2. vibration-1.1.0 rolls out in stages 10 % -> 50 % -> 100 % per hardware class, canaries stratified by
   temperature band, to completion.
3. vibration-1.2.0, whose firmware blows the latency budget on the device, is halted in its canary stage and
   its canary devices are rolled back to 1.1.0.
4. A quarter of the sensors age; their input means move, which flags them; each gets a calibration-only bundle
   (same firmware and model, the server's proposed calibration) and its drift score falls back.
5. A summary with the figures, and the invariants of simulator/chaos/invariants.py checked on the end state.

The server's dashboard (/ui/) is up from step 1; with `keep` (DEMO_KEEP=1) the server and the fleet stay up
after the summary until Ctrl-C, so a person can open it.
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tinyfleet.bundles.signing import private_pem
from tinyfleet.simulator.chaos import runner
from tinyfleet.simulator.chaos.invariants import Facts, RolloutFacts, check
from tinyfleet.simulator.chaos.scenarios import BAD_FIRMWARE, GOOD, SCENARIOS, STAGES
from tinyfleet.simulator.fleet import FleetSpec
from tinyfleet.simulator.releases import bundle_id
from tinyfleet.simulator.server_proc import ADMIN_TOKEN
from tinyfleet.simulator.world import BASE, World

BAD = replace(BAD_FIRMWARE, bundle_id="vibration-1.2.0-badfw", counter=3)


async def _staged(world: World, release: Any, previous: Any, console: Console) -> list[dict[str, Any]]:
    assert world.api is not None
    rids = {}
    for hw in world.hws:
        await world.release(release, hw)
        rids[hw] = await world.rollout(release, hw, STAGES, stratify_by=["temperature"])
    final = await world.wait_rollouts(list(rids.values()), timeout_s=300)
    out = []
    for hw, rid in rids.items():
        st = final[rid]
        devs = await world.api.rollout_devices(rid)
        out.append({"id": rid, "hw": hw, "bundle": bundle_id(release, hw), "previous": bundle_id(previous, hw),
                    "state": st["rollout"]["state"], "stage_index": st["rollout"]["stage_index"],
                    "reason": st["rollout"]["reason"], "counts": st["counts"],
                    "devices": {d["device_id"]: d["status"] for d in devs}})  # fmt: skip
        c = st["counts"]
        console.print(f"   rollout {rid} {bundle_id(release, hw)}: [b]{st['rollout']['state']}[/b] at stage "
                      f"{st['rollout']['stage_index'] + 1}/{len(STAGES)}, {c['succeeded']} succeeded, "
                      f"{c['failed']} failed, {c['rolled_back']} rolled back"
                      + (f" ({st['rollout']['reason']})" if st["rollout"]["reason"] else ""))  # fmt: skip
    return out


async def _until_signalled() -> None:
    """Wait for Ctrl-C or SIGTERM (even where the shell started us ignoring SIGINT), then return so the
    caller's `finally` stops the server and its broker."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def run(workdir: Path, devices: int, seed: int, console: Console, keep: bool = False) -> int:
    t0 = time.monotonic()
    world = World(workdir, FleetSpec(devices, seed=seed, prefix="demo"))
    # The server signs calibration-only bundles built from the dashboard with the releases' key.
    (workdir / "signing.key.pem").write_bytes(private_pem(world.key))
    world.server.env["TINYFLEET_SIGNING_KEY_FILE"] = str((workdir / "signing.key.pem").resolve())
    drift_sc = SCENARIOS["drift"]
    setups = {p.device_id: drift_sc.setup(p, seed) for p in world.plans}
    figures: dict[str, Any] = {}
    try:
        console.rule("[b]1. fleet-server + broker, devices provisioned through the API[/b]")
        await world.start()
        if not await world.settle({bundle_id(BASE, hw) for hw in world.hws}, timeout_s=180):
            console.print("[red]the fleet did not come online[/red]")
            return 1
        mix = {hw: sum(1 for p in world.plans if p.hw == hw) for hw in world.hws}
        figures["online_s"] = round(time.monotonic() - t0, 1)
        console.print(f"   {devices} devices online on {bundle_id(BASE, 'esp32s3')} / -stm32l4 {mix} "
                      f"after {figures['online_s']} s; API {world.server.url}")  # fmt: skip
        console.print(f"   dashboard: [b]{world.server.url}/ui/[/b] (sign in with the token {ADMIN_TOKEN})")

        console.rule("[b]2. staged rollout of vibration-1.1.0 (10 % -> 50 % -> 100 %)[/b]")
        t = time.monotonic()
        good = await _staged(world, GOOD, BASE, console)
        figures["good_rollout_s"] = round(time.monotonic() - t, 1)

        console.rule("[b]3. vibration-1.2.0: a firmware that fails its health check on the device[/b]")
        t = time.monotonic()
        bad = await _staged(world, BAD, GOOD, console)
        figures["bad_rollout_s"] = round(time.monotonic() - t, 1)
        await runner.converge(world, timeout_s=60)

        console.rule("[b]4. drift: ageing sensors answered by calibration-only bundles[/b]")
        t = time.monotonic()
        cal_rollouts, drift, allowed = await runner.drift_episode(world, setups, GOOD, timeout_s=300)
        figures["drift_s"] = round(time.monotonic() - t, 1)
        console.print(f"   {len(drift['cohort'])} sensors aged; {len(drift['flagged'])} flagged (input mean moved); "
                      f"{sum(1 for r in cal_rollouts if r['state'] == 'completed')} calibration-only rollouts "
                      "completed")  # fmt: skip
        if drift["shift"]:
            console.print(f"   input mean moved {min(drift['shift'].values())} .. {max(drift['shift'].values())} "
                          f"reference standard deviations on the flagged devices, at most "
                          f"{drift['healthy_shift_max']} on the others")  # fmt: skip
        for label, ids in (("flagged but not aged", sorted(set(drift["flagged"]) - set(drift["cohort"]))),
                           ("aged but not flagged", sorted(set(drift["cohort"]) - set(drift["flagged"])))):  # fmt: skip
            for k in ids:
                moved = drift["shift_for_check"].get(k)
                console.print(f"   {label}: {k}, input mean moved {moved if moved is None else round(moved, 2)} "
                              "reference standard deviations (the flag: the server's shift alert)")  # fmt: skip
        falls = [drift["drifted"][k] - drift["after"].get(k, drift["drifted"][k]) for k in drift["flagged"]]
        if falls:
            console.print(f"   drift score fell by {min(falls):.2f} .. {max(falls):.2f} "
                          f"(mean {sum(falls) / len(falls):.2f}) on the recalibrated devices")  # fmt: skip
        await runner.converge(world, timeout_s=60)

        facts = await runner.collect_facts(world, SCENARIOS["drift"], [], drift, allowed)
        good_bundles = {bundle_id(GOOD, hw) for hw in world.hws}
        rf = [RolloutFacts(r["id"], r["hw"], r["bundle"], r["previous"], r["state"], r["stage_index"], r["devices"])
              for r in bad]  # fmt: skip
        halted = check(Facts(facts.devices, rf, "halted", also_allowed=allowed))
        violations = [v for v in halted if not (v.invariant == "rollout-outcome" and v.subject in allowed)]
        violations += check(Facts(facts.devices, [], "completed", drift["before_for_check"],
                                  drift["after_for_check"]))  # fmt: skip
        off_good = [d.device_id for d in facts.devices
                    if d.running not in good_bundles | allowed.get(d.device_id, set())]  # fmt: skip

        console.rule("[b]5. summary[/b]")
        table = Table(show_header=True)
        table.add_column("figure")
        table.add_column("value", justify="right")
        fleet = world.fleet
        rows = [
            ("devices (esp32s3 / stm32l4)", f"{mix.get('esp32s3', 0)} / {mix.get('stm32l4', 0)}"),
            ("vibration-1.1.0 rollouts", ", ".join(f"{r['state']} ({r['counts']['succeeded']})" for r in good)),
            ("vibration-1.2.0 rollouts", ", ".join(f"{r['state']} at stage {r['stage_index'] + 1}, "
                                                   f"{r['counts']['rolled_back']} rolled back" for r in bad)),
            ("drift: aged / flagged / recalibrated", f"{len(drift['cohort'])} / {len(drift['flagged'])} / "
                                                     f"{sum(1 for r in cal_rollouts if r['state'] == 'completed')}"),
            ("devices on 1.1.0 (or its calibration)", f"{devices - len(off_good)} of {devices}"),
            ("bricked devices", str(sum(1 for d in facts.devices if d.bricked))),
            ("invariant violations", str(len(violations))),
            ("state reports / telemetry windows", f"{sum(len(d.log.reports) for d in fleet.devices):,} / "
                                                  f"{sum(d.log.telemetry for d in fleet.devices):,}"),
            ("inferences (TFLM interpreters shared)", f"{fleet.pool.invocations:,} ({len(fleet.pool)})"),
            ("MQTT messages sent / received by devices", f"{fleet.stats.sent:,} / {fleet.stats.received:,}"),
            ("simulated time", f"{fleet.clock.seconds:,.0f} s"),
            ("wall time", f"{time.monotonic() - t0:.0f} s"),
        ]  # fmt: skip
        for k, v in rows:
            table.add_row(k, v)
        console.print(table)
        for v in violations[:10]:
            console.print(f"   [red]{v.invariant}[/red] {v.subject}: {v.detail}")
        ok = (not violations and not off_good and all(r["state"] == "completed" for r in good)
              and all(r["state"] == "halted" and r["stage_index"] == 0 for r in bad))  # fmt: skip
        console.print("[green]demo complete[/green]" if ok else "[red]demo found a problem (above)[/red]")
        console.print(f"   dashboard: [b]{world.server.url}/ui/[/b] (token {ADMIN_TOKEN}); API {world.server.url}/docs")
        if keep:
            console.print("   DEMO_KEEP: the server, its dashboard and the fleet keep running; Ctrl-C stops them")
            await _until_signalled()
        else:
            console.print("   (stopped when the demo ends; DEMO_KEEP=1 make demo keeps them running)")
        return 0 if ok else 1
    finally:
        await world.stop()
