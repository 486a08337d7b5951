"""`fleetctl drift`: devices' drift scores and shifts, calibration proposals (as a file for `bundle build
--calibration`, or built into a signed bundle by the server), and telemetry per cohort."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .api_client import SERVER_OPT, TOKEN_OPT, ApiClient
from .errors import fail
from .output import JSON_OPT, iso, print_json, print_table, table

app = typer.Typer(no_args_is_help=True, help="Drift scores, calibration proposals and cohorts (docs/operations.md).")

AGAINST_OPT = typer.Option(
    "reference", "--against", help="reference: the device's own first window on the bundle; baseline: the "
    "bundle's validation baseline."
)  # fmt: skip


def _against(value: str) -> str:
    if value not in ("reference", "baseline"):
        fail(f"--against {value!r} must be reference or baseline")
    return value


@app.command("list")
def list_drift(
    alerts: bool = typer.Option(False, "--alerts", help="Only devices whose score is above the alert threshold."),
    shift_alerts: bool = typer.Option(False, "--shift-alerts", help="Only devices whose shift is above threshold."),
    as_json: bool = JSON_OPT,
    server: str = SERVER_OPT,
    token: str | None = TOKEN_OPT,
) -> None:
    """Every device's drift score and shift from its own reference window, largest score first."""
    params = {"alert_only": str(alerts).lower(), "shift_alert_only": str(shift_alerts).lower()}
    rows = ApiClient(server, token).get("/drift", params=params)
    if as_json:
        print_json(rows)
        return
    t = table("device", "bundle", "score", "alert", "shift", "shift alert", "computed")
    for d in rows:
        t.add_row(d["device_id"], d["bundle_id"], f"{d['score']:.3f}", "yes" if d["alert"] else "no",
                  f"{d['shift']:.3f}", "yes" if d["shift_alert"] else "no", iso(d["computed_at"]))  # fmt: skip
    print_table(t)


@app.command("proposal")
def proposal(
    device_id: str,
    against: str = AGAINST_OPT,
    out: Path | None = typer.Option(
        None, "--out", help="Write the proposed calibration JSON here, ready for `bundle build --calibration`."
    ),
    as_json: bool = JSON_OPT,
    server: str = SERVER_OPT,
    token: str | None = TOKEN_OPT,
) -> None:
    """A device's calibration proposal: new offsets and gains, the base bundle and the counter to build with."""
    p = ApiClient(server, token).get(f"/drift/{device_id}/calibration-proposal", params={"against": _against(against)})
    if out is not None:
        try:
            out.write_text(json.dumps(p["calibration"], indent=2) + "\n")
        except OSError as e:
            fail(f"cannot write {out}: {e.strerror}")
    if as_json:
        print_json(p)
        return
    typer.echo(f"device {p['device_id']} on {p['base_bundle']}: drift score {p['drift_score']:.3f}, "
               f"against {p['against']}")  # fmt: skip
    typer.echo(f"build with --counter {p['security_counter']} --calibration "
               f"{out if out is not None else '<the calibration JSON; --out writes it>'}")  # fmt: skip
    typer.echo(p["note"])


@app.command("calibration-bundle")
def calibration_bundle(
    device_id: str,
    bundle_id: str = typer.Option(..., "--id", help="Id of the new calibration-only bundle."),
    fleet_wide: bool = typer.Option(
        False, "--fleet-wide", help="No device scope: any device of the class may install it."
    ),
    against: str = AGAINST_OPT,
    as_json: bool = JSON_OPT,
    server: str = SERVER_OPT,
    token: str | None = TOKEN_OPT,
) -> None:
    """Let the server build the proposal into a signed calibration-only bundle (its signing key), and store it."""
    body = {"bundle_id": bundle_id, "per_device": not fleet_wide, "against": _against(against)}
    b = ApiClient(server, token).post(f"/drift/{device_id}/calibration-bundle", json=body)
    if as_json:
        print_json(b)
        return
    typer.echo(f"stored {b['bundle_id']} (counter {b['security_counter']}, scope {b['device_scope'] or 'all'}, "
               f"digest {b['digest']})")  # fmt: skip


@app.command("cohorts")
def cohorts(
    bundle_id: str | None = typer.Option(None, "--bundle", help="Only this bundle."),
    by: list[str] = typer.Option([], "--by", help="Tag name that defines a cohort (repeatable)."),
    as_json: bool = JSON_OPT,
    server: str = SERVER_OPT,
    token: str | None = TOKEN_OPT,
) -> None:
    """Telemetry totals per bundle and cohort (tag values): alarm rate, inferences, drift alerts."""
    params: dict[str, object] = {"by": by}
    if bundle_id:
        params["bundle_id"] = bundle_id
    rows = ApiClient(server, token).get("/cohorts", params=params)
    if as_json:
        print_json(rows)
        return
    t = table("bundle", "cohort", "devices", "inferences", "alarm rate", "drift alerts", "max drift")
    for c in rows:
        cohort = ",".join(f"{k}={v}" for k, v in sorted(c["cohort"].items())) or "all"
        t.add_row(c["bundle_id"], cohort, str(c["devices"]), str(c["inferences"]), f"{c['alarm_rate']:.4f}",
                  str(c["drift_alerts"]), "-" if c["max_drift"] is None else f"{c['max_drift']:.3f}")  # fmt: skip
    print_table(t)
