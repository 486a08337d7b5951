"""Database tables (SQLModel). Times are Unix seconds as floats, so SQLite and PostgreSQL agree to the bit.

Every schema change here needs a new Alembic revision in src/tinyfleet/server/migrations/versions/.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel


def _json(default: Any = None) -> Any:
    factory = (lambda: {}) if default is None else default
    return Field(default_factory=factory, sa_column=Column(JSON, nullable=False))


class Device(SQLModel, table=True):
    # The desired states committed but not yet acknowledged by the broker (services/publishing.py, owed).
    __table_args__ = (
        Index("ix_device_desired_owed", "id", postgresql_where=text("desired_seq > desired_published_seq"),
              sqlite_where=text("desired_seq > desired_published_seq")),
    )  # fmt: skip
    id: str = Field(primary_key=True, max_length=64)
    hardware_class: str = Field(max_length=32, index=True)
    tags: dict[str, str] = _json()
    created_at: float
    broker_password_hash: str  # mosquitto $7$ hash; the clear password is shown once, at provisioning
    online: bool = False
    last_seen: float | None = None
    running_bundle: str | None = Field(default=None, max_length=64)
    state: str | None = Field(default=None, max_length=32)
    state_reason: str | None = Field(default=None, max_length=200)
    desired_bundle: str | None = Field(default=None, max_length=64)
    # Highest report order `(epoch << 32) | seq` applied to `state`: older reports never overwrite newer ones.
    last_report_seq: int = Field(default=-1, sa_type=BigInteger)
    # Revision of the retained desired state (TFDS desired_seq): strictly increases, kept across restarts.
    desired_seq: int = 0
    # The desired_seq whose retained desired state the broker last acknowledged: below desired_seq, the device
    # is owed its desired state, and whichever replica runs the rollout engine publishes it (a replica can die
    # between its commit and its publish).
    desired_published_seq: int = 0
    desired_rollback: bool = False  # the desired state returns the device to an earlier bundle (TFDS flag)
    rollback_bundle: str | None = Field(default=None, max_length=64)  # TFDS rollback_digest's bundle
    running_digest: str | None = Field(default=None, max_length=64)
    security_counter: int | None = None
    image_state: str | None = Field(default=None, max_length=16)
    report_gaps: int = 0  # reports lost in transit (jumps in seq within an epoch)
    # The broker trust anchors (FleetCa fingerprints, comma-separated, sorted) in the CA bundle the device was
    # last handed, with its credentials; None: none (no TLS).
    trust_anchors: str | None = Field(default=None, sa_type=Text)


class FleetCa(SQLModel, table=True):
    """A trust anchor the fleet hands devices for the broker's certificate (server/broker/fleet_ca.py)."""

    fingerprint: str = Field(primary_key=True, max_length=64)  # SHA-256 of the DER, hex
    pem: str = Field(sa_type=Text)
    subject: str = Field(sa_type=Text)
    not_after: float
    role: str = Field(max_length=16)  # current, next, previous
    added_at: float


class OperatorToken(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    role: str = Field(max_length=16)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: float
    revoked_at: float | None = None


class AuditEntry(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    at: float = Field(index=True)
    actor: str = Field(max_length=64)
    action: str = Field(max_length=64)
    target: str = Field(max_length=128)
    result: str = Field(max_length=300)
    detail: dict[str, Any] = _json()


class Bundle(SQLModel, table=True):
    bundle_id: str = Field(primary_key=True, max_length=64)
    digest: str = Field(max_length=64, unique=True)  # SHA-256 of the metadata prefix (header..padding)
    hardware_class: str = Field(max_length=32, index=True)
    device_scope: str | None = Field(default=None, max_length=64)
    security_counter: int
    created: int
    expires: int | None = None
    rollback_target: str | None = Field(default=None, max_length=64)
    size: int
    payload_offset: int
    components: list[dict[str, Any]] = _json(list)  # [{type, version, offset, length, sha256}]
    manifest: dict[str, Any] = _json()
    gate_report: dict[str, Any] = _json()
    uploaded_at: float
    uploaded_by: str = Field(max_length=64)
    status: str = Field(default="stored", max_length=16)  # stored | published | retired
    # Key ids (hex) that this bundle's firmware adds to a device's trusted keys, as the uploader declared.
    grants_keys: list[str] = _json(list)


class Rollout(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    bundle_id: str = Field(foreign_key="bundle.bundle_id", max_length=64)
    state: str = Field(max_length=16, index=True)
    stage_index: int = 0
    stage_started_at: float | None = None
    stages: list[dict[str, Any]] = _json(list)
    target: dict[str, Any] = _json()
    rollback_on_halt: bool = True
    reason: str | None = Field(default=None, max_length=300)
    waiting_for: str | None = Field(default=None, max_length=300)
    created_at: float
    updated_at: float
    created_by: str = Field(max_length=64)


class RolloutDevice(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("rollout_id", "device_id"),)
    id: int | None = Field(default=None, primary_key=True)
    rollout_id: int = Field(foreign_key="rollout.id", index=True)
    device_id: str = Field(max_length=64)  # no foreign key: the entry outlives a deleted device
    stratum: str = Field(max_length=200)
    stage: int | None = None  # index of the stage that assigned this device; None = not yet
    previous_bundle: str | None = Field(default=None, max_length=64)
    desired_seq: int | None = None  # the desired state this rollout published for the device
    status: str = Field(default="pending", max_length=16)
    reason: str | None = Field(default=None, max_length=200)
    # Why the device failed, by reason code name (`HealthLatency`, `InstallTimeout`); kept after a rollback.
    failure: str | None = Field(default=None, max_length=64)
    assigned_at: float | None = None
    finished_at: float | None = None


class DeviceReport(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("device_id", "seq"),)
    id: int | None = Field(default=None, primary_key=True)
    device_id: str = Field(max_length=64, index=True)
    seq: int = Field(sa_type=BigInteger)  # (epoch << 32) | seq
    received_at: float
    bundle_id: str | None = Field(default=None, max_length=64)
    state: str = Field(max_length=32)
    reason: str | None = Field(default=None, max_length=200)
    payload: dict[str, Any] = _json()


class TelemetryRecord(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("device_id", "seq"),
        Index("ix_telemetry_received", "received_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    device_id: str = Field(max_length=64, index=True)
    seq: int = Field(sa_type=BigInteger)  # (epoch << 32) | window_seq
    received_at: float
    bundle_id: str | None = Field(default=None, max_length=64)
    samples: int = 0
    inferences: int = 0
    alarms: int = 0
    payload: dict[str, Any] = _json()


class TelemetryAggregate(SQLModel, table=True):
    """Running sums per (device, bundle): alarm rate, confidence histogram and channel moments."""

    device_id: str = Field(primary_key=True, max_length=64)
    bundle_id: str = Field(primary_key=True, max_length=64)
    windows: int = 0
    samples: int = 0
    inferences: int = 0
    alarms: int = 0
    confidence_hist: list[int] = _json(list)
    channels: list[dict[str, float]] = _json(list)  # per channel: {n, sum, sumsq}
    updated_at: float = 0.0


class DriftScore(SQLModel, table=True):
    device_id: str = Field(primary_key=True, max_length=64)
    bundle_id: str = Field(max_length=64)
    computed_at: float
    score: float
    alert: bool = False
    channels: list[dict[str, float]] = _json(list)
    # The device's first window on this bundle, per channel {mean, std}, and the newest window's mean_shift
    # from it (src/tinyfleet/server/drift.py).
    reference: list[dict[str, float]] = _json(list)
    shift: float = 0.0
    shift_alert: bool = False
