"""Server settings: environment variables (prefix `TINYFLEET_`, plus `DATABASE_URL`) and a TOML file.

Precedence, highest first: constructor arguments, environment, the TOML file named by `TINYFLEET_CONFIG`,
defaults. docs/operations.md lists every setting.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class SettingsError(ValueError):
    """The configuration is unusable; the message says which setting and why."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TINYFLEET_", extra="forbid", populate_by_name=True)

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("fleet-data")
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "TINYFLEET_DATABASE_URL", "database_url")
    )
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=0, le=65535)

    # "embedded": the server starts its own Mosquitto with a generated configuration.
    # "external": connect to broker_host:broker_port; the server cannot change that broker's users, so it
    # writes Mosquitto-format password and ACL files to <data_dir>/broker-export/ for its operator.
    # "cluster": the clustered broker (server/broker/cluster/node.mjs, docs/scaling.md): MQTT 3.1.1 nodes on one
    # Redis (cluster_store_url), where the server writes device identities; ingest split into slots between
    # replicas (ingest_slots, docs/device-protocol.md "Ingest partitions"), which needs PostgreSQL.
    broker_mode: Literal["embedded", "external", "cluster"] = "embedded"
    broker_host: str = "127.0.0.1"
    broker_port: int = Field(default=0, ge=0, le=65535)  # 0 with an embedded broker: pick a free port
    broker_tls: bool = False
    broker_ca_file: Path | None = None  # CA that signed the broker's certificate (the server verifies it)
    # Embedded broker with TLS: its listener's certificate chain and key (PEM).
    broker_tls_cert_file: Path | None = None
    broker_tls_key_file: Path | None = None
    broker_username: str = "fleet-server"
    broker_password: str | None = None
    mosquitto_bin: str = "mosquitto"
    # The user the embedded Mosquitto runs as. Unset: `mosquitto` when the server runs as root, else the
    # server's own user (Mosquitto cannot change user then).
    broker_user: str | None = None
    # Per-client broker limits (Mosquitto applies them to every client alike; docs/operations.md). In flight:
    # at least the agent's block window (4). Queued: sized for the server's own session.
    broker_max_inflight_messages: int = Field(default=100, ge=4, le=65535)
    broker_max_queued_messages: int = Field(default=100_000, ge=1)
    broker_max_queued_bytes: int = Field(default=32 * 1024 * 1024, ge=64 * 1024)
    # The longest the broker keeps a client's session after its connection ends, whatever the client asks
    # (devices ask for a day, the server for 7 days: docs/device-protocol.md, "Connection"). Whole hours.
    broker_max_session_expiry_s: int = Field(default=7 * 24 * 3600, ge=3600, multiple_of=3600)
    # MQTT v5 shared subscription group for report and telemetry ingest, so several replicas split the
    # stream. Unset: plain subscriptions (one server). Mosquitto 2.0.11 does not restore shared
    # subscriptions from its persistence file after a broker restart (docs/operations.md), so the
    # single-server default does not use them.
    ingest_share_group: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,32}$")
    # Cluster: the identity store (redis://host:port/db), the nodes the server connects to in turn
    # ("host:port"; default broker_host:broker_port) and the number of ingest partitions (fixed for a fleet).
    cluster_store_url: str | None = None
    broker_nodes: list[str] = Field(default_factory=list)
    ingest_slots: int = Field(default=16, ge=1, le=256)
    # More server users (same password) in the embedded broker, for replicas that connect to it: the broker
    # makes every client's id its username, so each replica needs a username of its own.
    broker_replica_users: list[str] = Field(default_factory=list)

    bootstrap_admin_token: str | None = None
    trusted_key_files: list[Path] = Field(default_factory=list)
    # Only for building bundles from parts through the API; its public key must be among the trusted ones.
    signing_key_file: Path | None = None
    run_model_gate: bool = True

    # Request bodies (413 above these, before the body is read): every route, and bundle upload and build
    # (a 64 MiB bundle, or its parts in base64 JSON).
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_bundle_request_bytes: int = Field(default=96 * 1024 * 1024, ge=1024)

    engine_interval_s: float = Field(default=1.0, gt=0)
    # A device silent (no presence, report or telemetry) for this long is shown offline until it sends again.
    presence_timeout_s: float = Field(default=300.0, gt=0)
    telemetry_retention_days: float = Field(default=30.0, gt=0)
    drift_alert_threshold: float = Field(default=1.0, gt=0)
    drift_shift_threshold: float = Field(default=1.0, gt=0)
    # Logs on stderr: "auto" = plain lines on a terminal, JSON lines otherwise; or always "json" / "text".
    log_format: Literal["auto", "json", "text"] = "auto"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("TINYFLEET_CONFIG")
        if config_file:
            if not Path(config_file).is_file():
                raise SettingsError(f"TINYFLEET_CONFIG={config_file}: no such file")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.environment == "production":
            if not self.database_url:
                raise SettingsError("production needs DATABASE_URL (SQLite is for development)")
            if self.broker_mode == "external" and not self.broker_password:
                raise SettingsError("production with an external broker needs TINYFLEET_BROKER_PASSWORD")
            if self.broker_mode == "embedded" and not self.broker_tls:
                raise SettingsError(
                    "production with an embedded broker needs TLS (broker_tls = true, broker_tls_cert_file, "
                    "broker_tls_key_file): without it device passwords cross the network in clear text"
                )
            if self.broker_mode == "cluster" and not self.broker_tls:
                raise SettingsError(
                    "production with a clustered broker needs TLS (broker_tls = true, broker_ca_file; every node "
                    "started with --tls-cert and --tls-key): without it device passwords cross the network in "
                    "clear text"
                )
            if self.broker_mode == "cluster" and not urlsplit(self.cluster_store_url or "").password:
                raise SettingsError(
                    "production with a clustered broker needs a password in TINYFLEET_CLUSTER_STORE_URL "
                    "(redis://:<password>@host:port/db, Redis started with requirepass): whoever can write to "
                    "the store can create broker users"
                )
        if self.broker_mode in ("external", "cluster") and self.broker_port == 0:
            raise SettingsError(f"an {self.broker_mode} broker needs TINYFLEET_BROKER_PORT")
        if self.broker_mode == "cluster":
            if not self.cluster_store_url:
                raise SettingsError("a cluster broker needs TINYFLEET_CLUSTER_STORE_URL (redis://host:port/db)")
            if not self.resolved_database_url.startswith("postgresql"):
                raise SettingsError(
                    "a cluster broker needs PostgreSQL (DATABASE_URL): replicas lease ingest slots there"
                )
            for node in self.broker_nodes:
                host, _, port = node.rpartition(":")
                if not host or not port.isdigit() or not 0 < int(port) < 65536:
                    raise SettingsError(f"broker_nodes: {node!r} is not host:port")
        if (
            self.broker_tls
            and self.broker_mode == "embedded"
            and not (self.broker_tls_cert_file and self.broker_tls_key_file)
        ):
            raise SettingsError("an embedded broker with TLS needs broker_tls_cert_file and broker_tls_key_file")
        return self

    @property
    def node_addresses(self) -> list[tuple[str, int]]:
        """The broker nodes the server connects to, in order."""
        nodes = [(h, int(p)) for h, _, p in (n.rpartition(":") for n in self.broker_nodes)]
        return nodes or [(self.broker_host, self.broker_port)]

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'fleet.db').resolve()}"

    @property
    def bundle_dir(self) -> Path:
        return self.data_dir / "bundles"

    @property
    def broker_dir(self) -> Path:
        return self.data_dir / "broker"

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file, when the database is one."""
        url = self.resolved_database_url
        if not url.startswith("sqlite:///") or url.endswith(":memory:"):
            return None
        return Path(url[len("sqlite:///") :])

    @property
    def resolved_broker_user(self) -> str | None:
        """Who the embedded Mosquitto runs as; None: the server's own user."""
        if self.broker_user is not None:
            return self.broker_user
        return "mosquitto" if os.geteuid() == 0 else None
