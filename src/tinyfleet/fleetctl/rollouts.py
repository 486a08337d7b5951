"""`fleetctl rollout`: upload bundles to the fleet server and run staged rollouts."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from tinyfleet.bundles.signing import key_id, load_public_key

from .api_client import SERVER_OPT, TOKEN_OPT, ApiClient, parse_tags
from .errors import EXIT_REFUSED, EXIT_TIMEOUT, cli_errors, fail, read_file
from .output import JSON_OPT, print_json

app = typer.Typer(no_args_is_help=True, help="Upload bundles to the fleet server; create and steer rollouts.")

TERMINAL = ("completed", "halted", "aborted")


@app.command("upload")
def upload(
    bundle: Path,
    grants_key: list[Path] = typer.Option(
        [], "--grants-key", help="Public key (PEM) this bundle's firmware adds to a device's trusted keys (repeatable)."
    ),
    as_json: bool = JSON_OPT,
    server: str = SERVER_OPT,
    token: str | None = TOKEN_OPT,
) -> None:
    """Upload a signed bundle (`fleetctl bundle build`); the server verifies it and runs the model gate."""
    data = read_file(bundle, "bundle")
    with cli_errors():
        grants = [key_id(load_public_key(p)).hex() for p in grants_key]
    r = ApiClient(server, token).post("/bundles", content=data, params={"grants_key": grants},
                                      headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    if as_json:
        print_json(r)
        return
    typer.echo(f"stored {r['bundle_id']} ({r['size']} bytes, digest {r['digest']})")


def _stages(spec: str) -> list[float]:
    try:
        out = [float(p) for p in spec.split(",") if p.strip()]
    except ValueError:
        fail(f"--stages {spec!r} must be comma-separated percentages, e.g. 1,10,50,100")
    if not out:
        fail("--stages needs at least one percentage")
    return out


@app.command("create")
def create(
    bundle_id: str = typer.Option(..., "--bundle", help="Bundle id stored on the server."),
    stages: str = typer.Option("1,10,50,100", "--stages", help="Cumulative percentages of the target."),
    hw: str | None = typer.Option(None, "--hw", help="Target hardware class (must be the bundle's)."),
    tag: list[str] = typer.Option([], "--tag", help="Target only devices with name=value (repeatable)."),
    device: list[str] = typer.Option([], "--device", help="Target only these device ids (repeatable)."),
    stratify_by: list[str] = typer.Option([], "--stratify-by", help="Tag names of the strata (default: all)."),
    min_successes: int = typer.Option(1, "--min-successes", help="Per stage, before advancing."),
    max_failure_rate: float = typer.Option(0.0, "--max-failure-rate", help="Failed / assigned that halts."),
    soak: float = typer.Option(0.0, "--soak", help="Seconds to wait after a stage's last install."),
    install_timeout: float | None = typer.Option(None, "--install-timeout", help="Seconds; then failed."),
    max_alarm_increase: float | None = typer.Option(None, "--max-alarm-increase", help="e.g. 0.05"),
    max_confidence_shift: float | None = typer.Option(None, "--max-confidence-shift", help="0..1"),
    max_drift: float | None = typer.Option(None, "--max-drift", help="Drift score that halts."),
    min_inferences: int = typer.Option(100, "--min-inferences", help="Telemetry needed to judge a device."),
    no_rollback: bool = typer.Option(False, "--no-rollback", help="On halt, leave devices where they are."),
    allow_untrusted_key: bool = typer.Option(
        False, "--allow-untrusted-key", help="Roll out although target devices are not known to trust the bundle's key."
    ),
    skip_busy: bool = typer.Option(
        False, "--skip-busy", help="Leave out devices already in an active rollout (default: refuse the rollout)."
    ),
    stages_file: Path | None = typer.Option(
        None,
        "--stages-file",
        help="JSON list of stages with their own gates (the API's `stages`); replaces --stages and the gate options.",
    ),
    as_json: bool = JSON_OPT,
    server: str = SERVER_OPT,
    token: str | None = TOKEN_OPT,
) -> None:
    """Start a staged rollout (the same gates on every stage, or per stage from --stages-file)."""
    install = {"min_successes": min_successes, "max_failure_rate": max_failure_rate, "soak_s": soak,
               "install_timeout_s": install_timeout}  # fmt: skip
    behaviour = {"max_alarm_rate_increase": max_alarm_increase, "max_confidence_shift": max_confidence_shift,
                 "max_drift": max_drift, "min_inferences": min_inferences}  # fmt: skip
    if stages_file is not None:
        try:
            stage_list = json.loads(read_file(stages_file, "stages file"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            fail(f"stages file {stages_file} is not valid JSON: {exc}")
        if not isinstance(stage_list, list):
            fail(f"stages file {stages_file} must hold a JSON list of stages")
    else:
        stage_list = [{"percent": p, "install": install, "behaviour": behaviour} for p in _stages(stages)]
    body = {
        "bundle_id": bundle_id,
        "target": {"hardware_class": hw, "tags": parse_tags(tag), "device_ids": device, "skip_busy": skip_busy},
        "stages": stage_list,
        "stratify_by": stratify_by or None,
        "rollback_on_halt": not no_rollback,
        "allow_untrusted_key": allow_untrusted_key,
    }
    r = ApiClient(server, token).post("/rollouts", json=body)
    if as_json:
        print_json(r)
        return
    ro = r["rollout"]
    typer.echo(f"rollout {ro['id']}: {ro['state']}, {sum(r['counts'].values())} devices targeted")
    counts: dict[str, int] = ro["target"].get("excluded_counts") or {}
    if counts:
        typer.echo(f"  excluded {sum(counts.values())}: " + ", ".join(f"{why}: {n}" for why, n in counts.items()))


def failed_text(r: dict) -> str:
    """"failed N (Code n, ...)": every device that failed, also those rolled back since, as the gate counts."""
    fails: dict[str, int] = r.get("failures") or {}
    if not fails:
        return f"failed {r['counts']['failed']}"
    return f"failed {sum(fails.values())} (" + ", ".join(f"{k} {n}" for k, n in fails.items()) + ")"


def _line(r: dict) -> str:
    ro, c = r["rollout"], r["counts"]
    stage = f"stage {ro['stage_index'] + 1}/{len(ro['stages'])}"  # stage_number: counted from 1
    extra = ro["reason"] or ro["waiting_for"] or ""
    return (f"rollout {ro['id']} {ro['bundle_id']}: {ro['state']}, {stage}, ok {c['succeeded']} {failed_text(r)} "
            f"in progress {c['assigned']} pending {c['pending']} rolled back {c['rolled_back']}"
            + (f" - {extra}" if extra else ""))  # fmt: skip


def device_reason(d: dict) -> str:
    """A device's line end: its failure code first (kept after a rollback), then what happened last."""
    parts = [p for p in (d.get("failure"), d.get("reason")) if p]
    if len(parts) == 2 and parts[0] == parts[1]:
        parts = parts[:1]
    return ": ".join(parts)


@app.command("list")
def list_rollouts(as_json: bool = JSON_OPT, server: str = SERVER_OPT, token: str | None = TOKEN_OPT) -> None:
    """Every rollout, newest first, one line each: state, stage, counts and what it waits for or why it ended."""
    rows = ApiClient(server, token).get("/rollouts")
    if as_json:
        print_json(rows)
        return
    for r in rows:
        typer.echo(_line(r))


@app.command("status")
def status(
    rollout_id: int,
    devices: bool = typer.Option(False, "--devices", help="Also list every targeted device."),
    as_json: bool = JSON_OPT,
    server: str = SERVER_OPT,
    token: str | None = TOKEN_OPT,
) -> None:
    """A rollout's state and counts, each failed device's reason code grouped with counts, and with --devices
    every targeted device."""
    api = ApiClient(server, token)
    r = api.get(f"/rollouts/{rollout_id}")
    devs = api.get(f"/rollouts/{rollout_id}/devices") if devices else None
    if as_json:
        print_json({"status": r, "devices": devs})
        return
    typer.echo(_line(r))
    for d in devs or []:
        stage = "-" if d["stage"] is None else d["stage"] + 1
        typer.echo(f"  {d['device_id']:<24} stage {stage}  {d['status']:<11} {d['stratum']}  {device_reason(d)}")


class _Progress:
    """`rollout wait`'s view: on a terminal one live bar per stage (devices with an outcome out of the stage's
    devices) and the gate being waited on; otherwise a line each time the summary changes."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = console.is_terminal
        self.bars = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[detail]}"),
            console=console, transient=False,
        )  # fmt: skip
        self.tasks: dict[int, TaskID] = {}
        self.last = ""

    def __enter__(self) -> _Progress:
        if self.live:
            self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.bars.stop()

    def message(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def update(self, r: dict, devices: list[dict] | None) -> None:
        line = _line(r)
        if not self.live:
            if line != self.last:
                self.message(line)
            self.last = line
            return
        ro = r["rollout"]
        per_stage = stage_sizes(len(devices or []), [s["percent"] for s in ro["stages"]])
        done = [0] * len(per_stage)
        for d in devices or []:
            if d["stage"] is not None and d["status"] not in ("pending", "assigned") and d["stage"] < len(done):
                done[d["stage"]] += 1
        for i, size in enumerate(per_stage):
            detail = ""
            if i == ro["stage_index"]:
                detail = ro["reason"] or ro["waiting_for"] or ro["state"]
            desc = f"stage {i + 1}/{len(per_stage)} ({ro['stages'][i]['percent']:g}%)"
            if i not in self.tasks:
                self.tasks[i] = self.bars.add_task(desc, total=size, detail=detail)
            self.bars.update(self.tasks[i], completed=done[i], total=size, detail=detail)
        if line != self.last and ro["state"] in TERMINAL:
            self.message(line)
        self.last = line


def stage_sizes(total: int, percents: list[float]) -> list[int]:
    """How many devices each stage adds (stage i covers ceil(total * percent_i / 100) cumulatively)."""
    out, before = [], 0
    for p in percents:
        upto = min(total, max(1, math.ceil(total * p / 100 - 1e-9))) if total and p > 0 else 0
        out.append(max(0, upto - before))
        before = max(before, upto)
    return out


@app.command("wait")
def wait(
    rollout_id: int,
    timeout: float = typer.Option(600, "--timeout", help="Seconds; then exit 3 (the rollout keeps running)."),
    as_json: bool = typer.Option(False, "--json", help="No progress; print the final status as JSON."),
    server: str = SERVER_OPT,
    token: str | None = TOKEN_OPT,
) -> None:
    """Wait until the rollout ends: exit 0 if it completed, 1 if it halted or was aborted, 3 on --timeout.

    On a terminal: a live bar per stage with its counts and the gate being waited on; otherwise a line per
    change. A server that restarts meanwhile is waited for, and the wait goes on."""
    api = ApiClient(server, token)
    deadline = time.monotonic() + timeout
    unreachable = False
    state = "unknown (server unreachable)"
    last: dict | None = None
    console = Console(quiet=as_json)
    with _Progress(console) as view:  # errors are printed after it ends: rich redirects stderr meanwhile
        while True:
            r = api.poll(f"/rollouts/{rollout_id}")
            devices = api.poll(f"/rollouts/{rollout_id}/devices") if r is not None and view.live else None
            if r is None:
                if not unreachable:
                    view.message(f"server {api.server} unreachable; waiting for it to come back")
                unreachable = True
            else:
                if unreachable:
                    view.message("server reachable again")
                unreachable = False
                view.update(r, devices)
                last, state = r, r["rollout"]["state"]
                if state in TERMINAL:
                    break
            if time.monotonic() > deadline:
                break
            time.sleep(1)
    if as_json:
        print_json(last)
    if state in TERMINAL:
        raise typer.Exit(0 if state == "completed" else EXIT_REFUSED)
    fail(f"rollout {rollout_id} still {state} after {timeout:g} s", EXIT_TIMEOUT)


def _action(rollout_id: int, action: str, as_json: bool, server: str, token: str | None, **params: object) -> None:
    r = ApiClient(server, token).post(f"/rollouts/{rollout_id}/{action}", params=params or None)
    print_json(r) if as_json else typer.echo(_line(r))


@app.command("pause")
def pause(rollout_id: int, as_json: bool = JSON_OPT, server: str = SERVER_OPT, token: str | None = TOKEN_OPT) -> None:
    """Stop assigning devices; devices already updating carry on."""
    _action(rollout_id, "pause", as_json, server, token)


@app.command("resume")
def resume(rollout_id: int, as_json: bool = JSON_OPT, server: str = SERVER_OPT, token: str | None = TOKEN_OPT) -> None:
    """Continue a paused rollout where it stopped."""
    _action(rollout_id, "resume", as_json, server, token)


@app.command("abort")
def abort(
    rollout_id: int,
    no_rollback: bool = typer.Option(False, "--no-rollback", help="Leave updated devices on the new bundle."),
    as_json: bool = JSON_OPT,
    server: str = SERVER_OPT,
    token: str | None = TOKEN_OPT,
) -> None:
    """End a rollout now; by default every device it touched gets its previous bundle back."""
    _action(rollout_id, "abort", as_json, server, token, rollback=str(not no_rollback).lower())
