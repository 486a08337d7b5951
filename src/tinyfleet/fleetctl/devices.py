"""`fleetctl devices`: register devices with the fleet server, look at them, tag and remove them (one by one or
many by filter, after a confirmation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from .api_client import SERVER_OPT, TOKEN_OPT, ApiClient, detail, parse_tags
from .errors import EXIT_REFUSED, fail
from .output import JSON_OPT, iso, print_json, print_table, table

app = typer.Typer(no_args_is_help=True, help="Provision, list, show, tag and delete devices on the fleet server.")

HW_FILTER = typer.Option(None, "--hw", help="Only devices of this hardware class.")
TAG_FILTER = typer.Option([], "--tag", help="Only devices with name=value (repeatable: all must match).")
ONLINE_FILTER = typer.Option(None, "--online/--offline", help="Only devices online (or offline), by presence.")
YES_OPT = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation when a filter selects devices.")


@app.command("provision")
def provision(
    device_id: str = typer.Argument(..., help="Device id (also its MQTT client id and username)."),
    hw: str = typer.Option(..., "--hw", help="Hardware class, e.g. stm32l4 (must have a hardware profile)."),
    tag: list[str] = typer.Option([], "--tag", help="name=value (repeatable), e.g. site=plant-a."),
    as_json: bool = typer.Option(True, "--json", help="Print JSON (always: the credentials are for a program)."),
    server: str = SERVER_OPT,
    token: str | None = TOKEN_OPT,
) -> None:
    """Register a device; prints its broker credentials as JSON (the password is shown only now)."""
    api = ApiClient(server, token)
    print_json(api.post("/devices", json={"id": device_id, "hardware_class": hw, "tags": parse_tags(tag)}))


@app.command("provision-batch")
def provision_batch(
    device_ids: list[str] = typer.Argument(None, help="Device ids (or --from FILE)."),
    from_file: Path | None = typer.Option(None, "--from", help="A file of device ids, one a line ('#' comments)."),
    hw: str = typer.Option(..., "--hw", help="Hardware class of every device (must have a hardware profile)."),
    tag: list[str] = typer.Option([], "--tag", help="name=value (repeatable), given to every device."),
    as_json: bool = typer.Option(True, "--json", help="Print JSON (always: the credentials are for a program)."),
    server: str = SERVER_OPT,
    token: str | None = TOKEN_OPT,
) -> None:
    """Register up to 500 devices in one request, all or none; prints each one's broker credentials as JSON
    (a list in the ids' order; the passwords are shown only now)."""
    ids = list(device_ids or [])
    if from_file is not None:
        try:
            lines = from_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read {from_file}: {exc}")
        ids += [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if not ids:
        fail("no device ids: give them as arguments or with --from FILE")
    tags = parse_tags(tag)
    body = {"devices": [{"id": i, "hardware_class": hw, "tags": tags} for i in ids]}
    print_json(ApiClient(server, token).post("/devices/batch", json=body)["devices"])


def _filters(hw: str | None, tag: list[str], online: bool | None) -> dict[str, Any]:
    params: dict[str, Any] = {"tag": tag}
    parse_tags(tag)  # a malformed --tag is the operator's to fix, before any request
    if hw:
        params["hardware_class"] = hw
    if online is not None:
        params["online"] = str(online).lower()
    return params


@app.command("list")
def list_devices(
    hw: str | None = HW_FILTER,
    tag: list[str] = TAG_FILTER,
    online: bool | None = ONLINE_FILTER,
    as_json: bool = JSON_OPT,
    server: str = SERVER_OPT,
    token: str | None = TOKEN_OPT,
) -> None:
    """Devices with presence, running bundle and state: every one, page after page of the API."""
    rows = ApiClient(server, token).get_all("/devices", _filters(hw, tag, online))
    if as_json:
        print_json(rows)
        return
    t = table("id", "class", "tags", "online", "last seen", "running", "state")
    for d in rows:
        tags = ",".join(f"{k}={v}" for k, v in sorted(d["tags"].items()))
        t.add_row(d["id"], d["hardware_class"], tags, "yes" if d["online"] else "no", iso(d["last_seen"]),
                  d["running_bundle"] or "-", d["state"] or "-")  # fmt: skip
    print_table(t)


@app.command("show")
def show(device_id: str, as_json: bool = JSON_OPT, server: str = SERVER_OPT, token: str | None = TOKEN_OPT) -> None:
    """One device: presence, what it runs and what it was asked to run."""
    d = ApiClient(server, token).get(f"/devices/{device_id}")
    if as_json:
        print_json(d)
        return
    for k in ("id", "hardware_class", "tags", "online", "last_seen", "running_bundle", "state", "state_reason",
              "desired_bundle", "desired_seq", "created_at"):  # fmt: skip
        v = d.get(k)
        if k in ("last_seen", "created_at"):
            v = iso(v)
        elif k == "tags":
            v = ",".join(f"{a}={b}" for a, b in sorted(v.items())) or "-"
        typer.echo(f"{k:<15} {v if v is not None else '-'}")


@app.command("reports")
def reports(
    device_id: str,
    limit: int = typer.Option(1000, "--limit", min=1, help="At most this many, oldest first."),
    as_json: bool = JSON_OPT,
    server: str = SERVER_OPT,
    token: str | None = TOKEN_OPT,
) -> None:
    """The state reports the server stored for a device, oldest first, with each reason by name."""
    rows = ApiClient(server, token).get(f"/devices/{device_id}/reports", params={"limit": limit})
    if as_json:
        print_json(rows)
        return
    t = table("epoch", "seq", "state", "reason", "bundle", "received")
    for r in rows:
        t.add_row(str(r["epoch"]), str(r["seq"]), r["state"], r["reason"] or "-", r["bundle_id"] or "-",
                  iso(r["received_at"]))  # fmt: skip
    print_table(t)


@app.command("credentials")
def credentials(
    device_id: str,
    as_json: bool = typer.Option(True, "--json", help="Print JSON (always: the credentials are for a program)."),
    server: str = SERVER_OPT,
    token: str | None = TOKEN_OPT,
) -> None:
    """Give a device a new broker password (printed once, as JSON); the old one stops working."""
    print_json(ApiClient(server, token).post(f"/devices/{device_id}/credentials"))


def _select(api: ApiClient, ids: list[str], hw: str | None, tag: list[str], online: bool | None) -> list[str]:
    has_filter = hw is not None or bool(tag) or online is not None
    if ids and has_filter:
        fail("name devices or give a filter (--hw, --tag, --online/--offline), not both")
    if ids:
        return ids
    if not has_filter:
        fail("name devices or give a filter (--hw, --tag, --online/--offline)")
    return [d["id"] for d in api.get_all("/devices", _filters(hw, tag, online))]


def _confirm(verb: str, ids: list[str], yes: bool, by_filter: bool) -> None:
    if not ids:
        fail("no device matches the filter", EXIT_REFUSED)
    if by_filter and not yes:
        shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        try:
            ok = typer.confirm(f"{verb} {len(ids)} device(s): {shown}?", default=False, err=True)
        except typer.Abort:  # no answer (end of input, Ctrl-C)
            ok = False
            typer.echo(err=True)
        if not ok:
            fail("not confirmed; nothing done (--yes skips the question)", EXIT_REFUSED)


def _each(api: ApiClient, ids: list[str], method: str, path: str, as_json: bool, done: str, **kw: Any) -> None:
    """One request per device; a refusal for one device does not stop the others. Exit 1 if any was refused."""
    results = []
    for i in ids:
        r = api.call(method, path.format(id=i), **kw)
        ok = r.status_code < 400
        results.append({"id": i, "ok": ok, "detail": None if ok else detail(r)})
        if not as_json:
            typer.echo(f"{done} {i}" if ok else f"refused {i}: {detail(r)}")
    refused = [r for r in results if not r["ok"]]
    if as_json:
        print_json(results)
    elif len(ids) > 1:
        typer.echo(f"{len(ids) - len(refused)} of {len(ids)} device(s) {done}")
    if refused:
        raise typer.Exit(EXIT_REFUSED)


@app.command("tag")
def tag_devices(
    device_ids: list[str] = typer.Argument(None, help="Devices to change (or select them with a filter)."),
    set_: list[str] = typer.Option([], "--set", help="name=value to add or change (repeatable)."),
    remove: list[str] = typer.Option([], "--remove", help="Tag name to remove (repeatable)."),
    hw: str | None = HW_FILTER,
    tag: list[str] = TAG_FILTER,
    online: bool | None = ONLINE_FILTER,
    yes: bool = YES_OPT,
    as_json: bool = JSON_OPT,
    server: str = SERVER_OPT,
    token: str | None = TOKEN_OPT,
) -> None:
    """Change tags of named devices, or of every device a filter selects (asks first; --yes does not).
    Rollouts already created keep their strata."""
    body = {"set": parse_tags(set_), "remove": remove}
    if not body["set"] and not remove:
        fail("nothing to change: give --set name=value or --remove name")
    api = ApiClient(server, token)
    ids = _select(api, device_ids or [], hw, tag, online)
    _confirm("retag", ids, yes, not device_ids)
    _each(api, ids, "PATCH", "/devices/{id}/tags", as_json, "retagged", json=body)


@app.command("delete")
def delete(
    device_ids: list[str] = typer.Argument(None, help="Devices to remove (or select them with a filter)."),
    hw: str | None = HW_FILTER,
    tag: list[str] = TAG_FILTER,
    online: bool | None = ONLINE_FILTER,
    yes: bool = YES_OPT,
    as_json: bool = JSON_OPT,
    server: str = SERVER_OPT,
    token: str | None = TOKEN_OPT,
) -> None:
    """Remove devices and their broker credentials (admin): named ones, or every device a filter selects
    (asks first; --yes does not). Its credentials stop working at once; its rollout entries stay. When one
    cannot be removed, the others still go and the exit code is 1."""
    api = ApiClient(server, token)
    ids = _select(api, device_ids or [], hw, tag, online)
    _confirm("delete", ids, yes, not device_ids)
    _each(api, ids, "DELETE", "/devices/{id}", as_json, "deleted")
