"""`fleetctl audit` and `fleetctl tokens`: the audit log, and operator tokens (admin)."""

from __future__ import annotations

import typer

from .api_client import SERVER_OPT, TOKEN_OPT, ApiClient
from .output import JSON_OPT, iso, print_json, print_table, table

tokens_app = typer.Typer(no_args_is_help=True, help="Operator tokens: create, list, revoke (admin).")


def audit(
    action: str | None = typer.Option(None, "--action", help="Only this action, e.g. rollout.create."),
    actor: str | None = typer.Option(None, "--actor", help="Only this token name."),
    limit: int = typer.Option(100, "--limit", min=1, max=1000, help="At most this many entries, newest first."),
    as_json: bool = JSON_OPT,
    server: str = SERVER_OPT,
    token: str | None = TOKEN_OPT,
) -> None:
    """The audit log, newest first: who did what to which target, and the result (operator)."""
    params: dict[str, object] = {"limit": limit}
    if action:
        params["action"] = action
    if actor:
        params["actor"] = actor
    rows = ApiClient(server, token).get("/audit", params=params)
    if as_json:
        print_json(rows)
        return
    t = table("time", "actor", "action", "target", "result")
    for e in rows:
        t.add_row(iso(e["at"]), e["actor"], e["action"], e["target"], e["result"])
    print_table(t)


@tokens_app.command("create")
def create(
    name: str = typer.Argument(..., help="Who holds the token, e.g. alice."),
    role: str = typer.Option("operator", "--role", help="viewer, operator or admin."),
    as_json: bool = JSON_OPT,
    server: str = SERVER_OPT,
    token: str | None = TOKEN_OPT,
) -> None:
    """Create a token and print its secret (shown only now)."""
    r = ApiClient(server, token).post("/tokens", json={"name": name, "role": role})
    print_json(r) if as_json else typer.echo(r["secret"])


@tokens_app.command("list")
def list_tokens(as_json: bool = JSON_OPT, server: str = SERVER_OPT, token: str | None = TOKEN_OPT) -> None:
    """Every token's name, role, creation and revocation time (never the secrets)."""
    rows = ApiClient(server, token).get("/tokens")
    if as_json:
        print_json(rows)
        return
    t = table("name", "role", "created", "revoked")
    for r in rows:
        t.add_row(r["name"], r["role"], iso(r["created_at"]), iso(r["revoked_at"]))
    print_table(t)


@tokens_app.command("revoke")
def revoke(name: str, as_json: bool = JSON_OPT, server: str = SERVER_OPT, token: str | None = TOKEN_OPT) -> None:
    """Revoke a token: requests with it are refused from now on."""
    r = ApiClient(server, token).delete(f"/tokens/{name}")
    print_json(r) if as_json else typer.echo(f"revoked {r['name']}")
