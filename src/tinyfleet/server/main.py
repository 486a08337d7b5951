"""`fleet-server`: run the server, migrate its database, create operator tokens."""

from __future__ import annotations

import json
import re
import sys
from typing import NoReturn

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError as PydanticSettingsError
from sqlmodel import Session

from tinyfleet.bundles.errors import KeyFileError
from tinyfleet.server.db import migrate
from tinyfleet.server.db.engine import make_engine
from tinyfleet.server.settings import Settings, SettingsError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="tinyfleet fleet server: REST API, embedded Mosquitto, MQTT publisher and rollout engine. "
    "Settings come from TINYFLEET_* variables, DATABASE_URL and the TOML file named by TINYFLEET_CONFIG "
    "(docs/operations.md).",
)


def _fail(msg: str, code: int = 2) -> NoReturn:
    typer.echo(f"fleet-server: {msg}", err=True)
    raise typer.Exit(code)


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        e = exc.errors()[0]
        where = ".".join(str(p) for p in e.get("loc", ())) or "settings"
        _fail(f"invalid setting {where}: {e.get('msg')}")
    except SettingsError as exc:
        _fail(str(exc))
    except PydanticSettingsError as exc:  # a value the environment source cannot decode, e.g. a list not in JSON
        m = re.search(r'field "(\w+)"', str(exc))
        name = m.group(1) if m else "?"
        hint = ""
        if name in Settings.model_fields and "list" in str(Settings.model_fields[name].annotation):
            hint = f"; lists are JSON, e.g. TINYFLEET_{name.upper()}='[\"a.pem\", \"b.pem\"]'"
        _fail(f"invalid setting TINYFLEET_{name.upper()}: cannot parse its value{hint}")


@app.command()
def serve(log_level: str = typer.Option("info", help="debug, info, warning or error")) -> None:
    """Start the server: migrate the database, start the broker, serve the API until interrupted."""
    import uvicorn

    from tinyfleet.server.api.app import create_app
    from tinyfleet.server.logs import configure
    from tinyfleet.server.runtime import FleetRuntime
    from tinyfleet.server.ui.app import install as install_ui
    from tinyfleet.server.workers.broker_process import BrokerError
    from tinyfleet.server.workers.instance_lock import DataDirLock, InUseError, check_port
    from tinyfleet.server.workers.mqtt_link import LinkError

    settings = _settings()
    # Before anything is touched (database, broker): a second server must leave the first one alone.
    try:
        lock = DataDirLock(settings.data_dir)
        lock.acquire()  # held until the process exits: the kernel drops it then
        check_port(settings.api_host, settings.api_port)
    except InUseError as exc:
        _fail(str(exc), 3)
    except OSError as exc:
        _fail(f"cannot lock the data directory {settings.data_dir}: {exc.strerror}", 3)
    if not settings.trusted_key_files:
        typer.echo("fleet-server: warning: no trusted_key_files (TINYFLEET_TRUSTED_KEY_FILES): every bundle upload "
                   "will be refused", err=True)  # fmt: skip
    configure(log_level, settings.log_format)
    try:
        rt = FleetRuntime(settings)
        rt.start()
    except migrate.UnknownRevisionError as exc:
        _fail(str(exc), 3)
    except (BrokerError, LinkError, KeyFileError, OSError) as exc:
        _fail(str(exc), 3)
    # The app's lifespan stops the runtime (and the broker it started): uvicorn re-raises SIGTERM/SIGINT after
    # its shutdown, so code after uvicorn.run() would never run. start() above is idempotent.
    app = create_app(rt, manage_runtime=True)
    install_ui(app)  # the dashboard, same process and origin, under /ui/
    uvicorn.run(app, host=settings.api_host, port=settings.api_port, log_config=None, access_log=False)


@app.command("migrate")
def migrate_cmd() -> None:
    """Bring the database to the newest schema revision (the server also does this when it starts)."""
    settings = _settings()
    try:
        rev = migrate.upgrade(make_engine(settings.resolved_database_url))
    except migrate.UnknownRevisionError as exc:
        _fail(str(exc), 3)
    typer.echo(f"database at schema revision {rev}")


@app.command("create-token")
def create_token(
    name: str = typer.Option(..., "--name", help="Who holds the token, e.g. alice"),
    role: str = typer.Option("operator", "--role", help="viewer, operator or admin"),
) -> None:
    """Create an operator token directly in the database and print it (shown once)."""
    from tinyfleet.server.services import tokens
    from tinyfleet.server.services.errors import ServiceError

    settings = _settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        migrate.upgrade(engine)
        with Session(engine) as s:
            row, secret = tokens.create(s, name, role)
    except migrate.UnknownRevisionError as exc:
        _fail(str(exc), 3)
    except ServiceError as exc:
        _fail(exc.message)
    typer.echo(secret)
    typer.echo(f"token {row.name!r} with role {row.role}", err=True)


@app.command("config")
def show_config() -> None:
    """Print the effective settings as JSON (passwords and tokens masked)."""
    s = _settings()
    out = json.loads(s.model_dump_json())
    for secret in ("broker_password", "bootstrap_admin_token"):
        if out.get(secret):
            out[secret] = "***"
    out["resolved_database_url"] = s.resolved_database_url
    json.dump(out, sys.stdout, indent=2)
    typer.echo()


def main() -> None:
    app()
