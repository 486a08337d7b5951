"""`fleetctl devices`: register devices with the fleet server and look at them."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from .api_client import SERVER_OPT, TOKEN_OPT, ApiClient, parse_tags, print_json

app = typer.Typer(no_args_is_help=True, help="Provision, list, show and delete devices on the fleet server.")


@app.command("provision")
def provision(
    device_id: str = typer.Argument(..., help="Device id (also its MQTT client id and username)."),
    hw: str = typer.Option(..., "--hw", help="Hardware class, e.g. stm32l4."),
    tag: list[str] = typer.Option([], "--tag", help="name=value (repeatable), e.g. site=plant-a."),
    server: str = SERVER_OPT,
    token: str | None = TOKEN_OPT,
) -> None:
    """Register a device; prints its broker credentials as JSON (the password is shown only now)."""
    api = ApiClient(server, token)
    print_json(api.post("/devices", json={"id": device_id, "hardware_class": hw, "tags": parse_tags(tag)}))


@app.command("list")
def list_devices(
    hw: str | None = typer.Option(None, "--hw", help="Only this hardware class."),
    tag: list[str] = typer.Option([], "--tag", help="name=value (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    server: str = SERVER_OPT,
    token: str | None = TOKEN_OPT,
) -> None:
    api = ApiClient(server, token)
    params: dict[str, object] = {"tag": tag}
    if hw:
        params["hardware_class"] = hw
    rows = api.get("/devices", params=params)
    if as_json:
        print_json(rows)
        return
    table = Table("id", "class", "tags", "online", "running", "state")
    for d in rows:
        tags = ",".join(f"{k}={v}" for k, v in sorted(d["tags"].items()))
        table.add_row(d["id"], d["hardware_class"], tags, "yes" if d["online"] else "no",
                      d["running_bundle"] or "-", d["state"] or "-")  # fmt: skip
    Console().print(table)


@app.command("show")
def show(device_id: str, server: str = SERVER_OPT, token: str | None = TOKEN_OPT) -> None:
    print_json(ApiClient(server, token).get(f"/devices/{device_id}"))


@app.command("delete")
def delete(device_id: str, server: str = SERVER_OPT, token: str | None = TOKEN_OPT) -> None:
    """Remove a device and its broker credentials (admin)."""
    ApiClient(server, token).delete(f"/devices/{device_id}")
    typer.echo(f"deleted {device_id}")
