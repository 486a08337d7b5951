"""`fleetctl keys`: create and show bundle signing keys."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from tinyfleet.bundles.signing import generate_private_key, key_id, load_public_key, private_pem, public_der, public_pem

from .api_client import SERVER_OPT, TOKEN_OPT, ApiClient
from .errors import cli_errors, fail
from .output import JSON_OPT, print_json, print_table, table

app = typer.Typer(no_args_is_help=True, help="Bundle signing keys (ECDSA P-256).")


@app.command("init")
def init(
    dir: Path = typer.Option(Path("keys"), "--dir", help="Folder for the key pair."),
    name: str = typer.Option("signing", "--name", help="File name stem: NAME.key.pem and NAME.pub.pem."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing key pair."),
    as_json: bool = JSON_OPT,
) -> None:
    """Create a signing key pair. The private key is written with mode 0600; keep it off shared machines."""
    priv_path, pub_path = dir / f"{name}.key.pem", dir / f"{name}.pub.pem"
    if priv_path.exists() and not force:
        with cli_errors():
            kid = key_id(load_public_key(priv_path)).hex()
        if as_json:
            print_json({"private_key": str(priv_path), "public_key": str(pub_path), "key_id": kid, "created": False})
        else:
            typer.echo(f"{priv_path} exists (key id {kid}); keeping it (use --force to replace)")
        return
    try:
        dir.mkdir(parents=True, exist_ok=True)
        key = generate_private_key()
        passphrase = os.environ.get("TINYFLEET_KEY_PASSPHRASE", "").encode() or None
        fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(private_pem(key, passphrase))
        pub_path.write_bytes(public_pem(key.public_key()))
        (dir / f"{name}.pub.der").write_bytes(public_der(key.public_key()))
    except OSError as e:
        fail(f"cannot write keys in {dir}: {e.strerror}")
    if as_json:
        print_json({"private_key": str(priv_path), "public_key": str(pub_path),
                    "key_id": key_id(key.public_key()).hex(), "created": True})  # fmt: skip
        return
    typer.echo(f"private key  {priv_path}")
    typer.echo(f"public key   {pub_path}")
    typer.echo(f"key id       {key_id(key.public_key()).hex()}")


@app.command("fleet")
def fleet(as_json: bool = JSON_OPT, server: str = SERVER_OPT, token: str | None = TOKEN_OPT) -> None:
    """Signing keys as the server sees them: which it accepts, which bundles each signed, how many devices are
    known to trust each (by the bundle they run: its signer and the keys its firmware adds)."""
    rows = ApiClient(server, token).get("/keys")
    if as_json:
        print_json(rows)
        return
    t = table("key id", "server trusts", "devices trusting", "bundles signed")
    for k in rows:
        t.add_row(k["key_id"], "yes" if k["server_trusts"] else "no", str(k["devices_trusting"]),
                  ", ".join(k["bundles_signed"]) or "-")  # fmt: skip
    print_table(t)
    unknown = rows[0]["devices_unknown"] if rows else 0
    if unknown:
        typer.echo(f"{unknown} device(s) run a bundle the server does not hold: their keys are unknown")


@app.command("show")
def show(path: Path = typer.Argument(..., help="A PEM public or private key."), as_json: bool = JSON_OPT) -> None:
    """Print a key's id (the 8 bytes a bundle's signature block names)."""
    with cli_errors():
        kid = key_id(load_public_key(path)).hex()
    print_json({"path": str(path), "key_id": kid}) if as_json else typer.echo(kid)
