"""`fleet-server`: run the server, migrate its database, create operator tokens."""

from __future__ import annotations

import json
import sys
from typing import NoReturn

import typer
from pydantic import ValidationError
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


@app.command()
def serve(log_level: str = typer.Option("info", help="debug, info, warning or error")) -> None:
    """Start the server: migrate the database, start the broker, serve the API until interrupted."""
    import uvicorn

    from tinyfleet.server.api.app import create_app
    from tinyfleet.server.logs import configure
    from tinyfleet.server.runtime import FleetRuntime
    from tinyfleet.server.ui.app import install as install_ui
    from tinyfleet.server.workers.broker_process import BrokerError
    from tinyfleet.server.workers.mqtt_link import LinkError

    settings = _settings()
    configure(log_level)
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
