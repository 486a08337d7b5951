"""The running server's parts, wired together: database, broker, MQTT link, rollout engine.

`FleetRuntime.start()` migrates the database (refusing an unknown revision), starts the embedded Mosquitto
with every provisioned device's credentials, connects the server's MQTT client and starts the engine.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from tinyfleet.server.broker.config import render_acl, render_password_file
from tinyfleet.server.broker.manager import EmbeddedBroker
from tinyfleet.server.db import migrate
from tinyfleet.server.db.engine import make_engine
from tinyfleet.server.metrics import Metrics
from tinyfleet.server.services import devices, tokens
from tinyfleet.server.settings import Settings

log = logging.getLogger("tinyfleet.server")


class EmbeddedCredentialSink:
    def __init__(self, broker: EmbeddedBroker) -> None:
        self.broker = broker

    def sync(self, device_hashes: Mapping[str, str]) -> None:
        self.broker.update_credentials(device_hashes)


class ExportedCredentialSink:
    """External broker: the server cannot change its users, so it writes Mosquitto-format password and ACL
    files to a directory for the broker's operator to install (docs/operations.md)."""

    def __init__(self, directory: Path, server_user: str) -> None:
        self.directory, self.server_user = directory, server_user

    def sync(self, device_hashes: Mapping[str, str]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "passwords").write_text(render_password_file(device_hashes))
        (self.directory / "acl").write_text(render_acl(self.server_user, device_hashes.keys()))


class FleetRuntime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine: Engine = make_engine(settings.resolved_database_url)
        self.metrics = Metrics()
        self.broker: EmbeddedBroker | None = None
        self.broker_password = settings.broker_password or secrets.token_urlsafe(24)
        self.credential_sink: devices.CredentialSink
        if settings.broker_mode == "embedded":
            self.broker = EmbeddedBroker(
                settings.broker_dir,
                server_user=settings.broker_username,
                server_password=self.broker_password,
                bind=settings.broker_host,
                port=settings.broker_port,
                mosquitto_bin=settings.mosquitto_bin,
            )
            self.credential_sink = EmbeddedCredentialSink(self.broker)
        else:
            self.credential_sink = ExportedCredentialSink(settings.data_dir / "broker-export", settings.broker_username)
        self.started = False

    @property
    def broker_port(self) -> int:
        return self.broker.port if self.broker else self.settings.broker_port

    @property
    def broker_host(self) -> str:
        return self.settings.broker_host

    def start(self) -> None:
        if self.started:
            return
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.settings.bundle_dir.mkdir(parents=True, exist_ok=True)
        rev = migrate.upgrade(self.engine)
        log.info("database at schema revision %s", rev)
        with Session(self.engine) as s:
            if self.settings.bootstrap_admin_token:
                tokens.ensure_bootstrap(s, self.settings.bootstrap_admin_token)
            hashes = devices.all_hashes(s)
        if self.broker is not None:
            self.broker.start(hashes)
            log.info("embedded mosquitto listening on %s:%d", self.broker.bind, self.broker.port)
        else:
            self.credential_sink.sync(hashes)
        self.started = True

    def stop(self) -> None:
        if self.broker is not None:
            self.broker.stop()
        self.engine.dispose()
        self.started = False

