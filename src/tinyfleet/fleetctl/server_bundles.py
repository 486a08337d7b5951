"""`fleetctl bundle list/show/publish/retire`: the bundles stored on the fleet server (the local commands,
build, inspect and verify, are in bundle.py). Registered into the `bundle` group by main.py."""

from __future__ import annotations

import typer

from .api_client import SERVER_OPT, TOKEN_OPT, ApiClient
from .output import JSON_OPT, iso, print_json, print_table, table


def list_bundles(as_json: bool = JSON_OPT, server: str = SERVER_OPT, token: str | None = TOKEN_OPT) -> None:
    """Bundles stored on the server: class, counter, status, expiry."""
    rows = ApiClient(server, token).get("/bundles")
    if as_json:
        print_json(rows)
        return
    t = table("id", "class", "counter", "status", "size", "expires", "scope", "digest")
    for b in rows:
        t.add_row(b["bundle_id"], b["hardware_class"], str(b["security_counter"]), b["status"], str(b["size"]),
                  iso(b["expires"]), b["device_scope"] or "-", b["digest"])  # fmt: skip
    print_table(t)


def show(bundle_id: str, as_json: bool = JSON_OPT, server: str = SERVER_OPT, token: str | None = TOKEN_OPT) -> None:
    """One stored bundle: its manifest, components and the model gate's report."""
    b = ApiClient(server, token).get(f"/bundles/{bundle_id}")
    if as_json:
        print_json(b)
        return
    for k in ("bundle_id", "hardware_class", "security_counter", "status", "size", "digest", "device_scope",
              "rollback_target", "uploaded_by"):  # fmt: skip
        typer.echo(f"{k:<17} {b[k] if b[k] is not None else '-'}")
    typer.echo(f"{'created':<17} {iso(b['created'])}")
    typer.echo(f"{'expires':<17} {iso(b['expires'])}")
    typer.echo(f"{'uploaded_at':<17} {iso(b['uploaded_at'])}")
    t = table("component", "version", "length", "sha256")
    for c in b["components"]:
        t.add_row(c["type"], c["version"], str(c["length"]), c["sha256"])
    print_table(t)


def publish(bundle_id: str, as_json: bool = JSON_OPT, server: str = SERVER_OPT, token: str | None = TOKEN_OPT) -> None:
    """Publish a stored bundle's blocks and meta to the broker now (a rollout does this on its first stage)."""
    b = ApiClient(server, token).post(f"/bundles/{bundle_id}/publish")
    print_json(b) if as_json else typer.echo(f"published {b['bundle_id']}")


def retire(bundle_id: str, as_json: bool = JSON_OPT, server: str = SERVER_OPT, token: str | None = TOKEN_OPT) -> None:
    """Retire a bundle: clear its meta and the blocks no other published bundle uses (refused while in use)."""
    r = ApiClient(server, token).post(f"/bundles/{bundle_id}/retire")
    if as_json:
        print_json(r)
        return
    typer.echo(f"retired {r['bundle']['bundle_id']} ({r['blocks_cleared']} block(s) cleared)")


def register(app: typer.Typer) -> None:
    app.command("list")(list_bundles)
    app.command("show")(show)
    app.command("publish")(publish)
    app.command("retire")(retire)
