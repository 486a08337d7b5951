"""`fleetctl ca`: rotate the CA that issues the broker's certificate, in steps (docs/operations.md, "Rotating the
broker's CA"): add the new CA, watch devices get it, switch the broker, retire the old CA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from .api_client import SERVER_OPT, TOKEN_OPT, ApiClient
from .errors import read_file
from .output import JSON_OPT, iso, print_json, print_table, table

app = typer.Typer(no_args_is_help=True, help="Rotate the broker's CA: status, add, switch, retire, cancel (admin).")


def _print_status(st: dict[str, Any]) -> None:
    typer.echo(f"phase {st['phase']}: {st['devices']} device(s), {st['lacking']} not handed the newest CA")
    t = table("role", "subject", "expires", "devices", "fingerprint")
    for a in st["anchors"]:
        t.add_row(a["role"], a["subject"], iso(a["not_after"]), str(a["devices"]), a["fingerprint"][:16])
    print_table(t)
    typer.echo(f"broker presents {st['broker_certificate'][:16] if st['broker_certificate'] else '-'}")
    if st["lacking_sample"]:
        more = st["lacking"] - len(st["lacking_sample"])
        typer.echo("lacking: " + ", ".join(st["lacking_sample"]) + (f" and {more} more" if more > 0 else ""))


def _step_out(r: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(r)
        return
    typer.echo(r["result"])
    _print_status(r["status"])


@app.command("status")
def status(as_json: bool = JSON_OPT, server: str = SERVER_OPT, token: str | None = TOKEN_OPT) -> None:
    """The CAs handed to devices (role, expiry, devices handed each), how many devices lack the newest, and the
    certificate the broker presents."""
    st = ApiClient(server, token).get("/fleet-ca")
    print_json(st) if as_json else _print_status(st)


@app.command("add")
def add(
    ca_file: Path = typer.Argument(..., help="The new CA certificate (PEM)."),
    as_json: bool = JSON_OPT,
    server: str = SERVER_OPT,
    token: str | None = TOKEN_OPT,
) -> None:
    """Step 1: hand devices the new CA besides the current one, with every provisioning and credential rotation
    from now on (fleetctl devices credentials ID hands it to a device already in the field)."""
    pem = read_file(ca_file, "the CA file").decode("utf-8", errors="replace")
    _step_out(ApiClient(server, token).post("/fleet-ca/anchors", json={"ca_pem": pem}), as_json)


@app.command("switch")
def switch(
    cert: Path = typer.Option(..., "--cert", help="The broker's new certificate (then any intermediates), PEM, "
                              "on the server's host."),  # fmt: skip
    key: Path = typer.Option(..., "--key", help="Its private key, PEM, on the server's host (read by the server)."),
    force: bool = typer.Option(False, "--force", help="Switch although devices were not handed the new CA: they "
                               "can no longer connect."),  # fmt: skip
    as_json: bool = JSON_OPT,
    server: str = SERVER_OPT,
    token: str | None = TOKEN_OPT,
) -> None:
    """Step 2: the embedded broker serves a certificate from the new CA (SIGHUP; connected devices stay
    connected). Refused while devices lack the new CA, unless --force. Also renews a certificate from the
    current CA."""
    body = {"cert_file": str(cert.absolute()), "key_file": str(key.absolute()), "force": force}
    _step_out(ApiClient(server, token).post("/fleet-ca/switch", json=body), as_json)


@app.command("retire")
def retire(as_json: bool = JSON_OPT, server: str = SERVER_OPT, token: str | None = TOKEN_OPT) -> None:
    """Step 3: stop handing out the old CA (after the switch)."""
    _step_out(ApiClient(server, token).post("/fleet-ca/retire"), as_json)


@app.command("cancel")
def cancel(as_json: bool = JSON_OPT, server: str = SERVER_OPT, token: str | None = TOKEN_OPT) -> None:
    """Undo step 1 before the switch: stop handing out the new CA."""
    _step_out(ApiClient(server, token).post("/fleet-ca/cancel"), as_json)
