"""Device registry: provisioning with broker credentials, listing, presence."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete as sa_delete
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from tinyfleet.bundles.profiles import load_profiles
from tinyfleet.protocol import topics
from tinyfleet.server.broker.passwords import hash_password, new_password
from tinyfleet.server.db.models import (
    Device,
    DeviceReport,
    DriftScore,
    Rollout,
    RolloutDevice,
    TelemetryAggregate,
    TelemetryRecord,
)
from tinyfleet.server.drift import observed_std_q8
from tinyfleet.server.rollouts.states import ACTIVE
from tinyfleet.server.services.credential_sync import CredentialSink
from tinyfleet.server.services.errors import BadRequest, Conflict, NotFound, Unavailable
from tinyfleet.server.services.publishing import Outbox
from tinyfleet.server.services.rollouts import set_status

CLASS_RE = re.compile(r"[a-z0-9_-]{1,32}")
TAG_KEY_RE = re.compile(r"[a-z0-9_-]{1,32}")
TAG_VALUE_RE = re.compile(r"[A-Za-z0-9._:+-]{1,64}")
MAX_TAGS = 16


def validate_identity(device_id: str, hardware_class: str, tags: Mapping[str, str], reserved: Collection[str]) -> None:
    """Every rule is a full match: a trailing newline is not allowed anywhere."""
    if not topics.valid_device_id(device_id):
        raise BadRequest(f"device id {device_id!r} must be {topics.DEVICE_ID_RULE}")
    if device_id in reserved:
        raise BadRequest(f"device id {device_id!r} is reserved: it is one of the server's own broker users")
    if not CLASS_RE.fullmatch(hardware_class):
        raise BadRequest(f"hardware class {hardware_class!r} must be 1-32 of a-z 0-9 _ -")
    validate_tags(tags)


def validate_tags(tags: Mapping[str, str]) -> None:
    if len(tags) > MAX_TAGS:
        raise BadRequest(f"{len(tags)} tags; at most {MAX_TAGS} are allowed")
    for k, v in tags.items():
        if not TAG_KEY_RE.fullmatch(k):
            raise BadRequest(f"tag name {k!r} must be 1-32 of a-z 0-9 _ -")
        if not isinstance(v, str) or not TAG_VALUE_RE.fullmatch(v):
            raise BadRequest(f"tag {k}={v!r}: value must be 1-64 of A-Z a-z 0-9 . _ : + -")


def all_hashes(session: Session) -> dict[str, str]:
    rows = session.exec(select(Device.id, Device.broker_password_hash))  # columns only: no ORM objects
    return dict(rows.all())


def _at_broker(session: Session, sink: CredentialSink, device_id: str, new: str | None, old: str | None,
               undo: Callable[[], None] | None) -> None:  # fmt: skip
    """Give the device `new` at the broker (None: revoke) and return once the broker confirms it. When it does
    not, put the database back with `undo`, the broker's file back to `old`, and raise Unavailable saying
    that nothing changed. Called under sink.exclusive(device_id)."""
    try:
        sink.write(device_id, new)
        sink.confirm(device_id, new is not None)
    except Exception as exc:  # the broker side of the change failed; undo the database side
        if undo is not None:
            session.rollback()
            undo()
            session.commit()
        with contextlib.suppress(Exception):
            sink.write(device_id, old)
        raise Unavailable(f"the broker did not take the credentials: {exc}; nothing was changed, try again") from exc


def provision(
    session: Session, sink: CredentialSink, device_id: str, hardware_class: str, tags: Mapping[str, str],
    *, trust_anchors: str | None = None,
) -> tuple[Device, str]:
    """Register a device and give it broker credentials. Returns the device and its clear password. All or
    nothing: when the broker does not take the credentials the device is not registered. `trust_anchors`:
    the record of the CA bundle handed with them (services/fleet_ca.py)."""
    validate_identity(device_id, hardware_class, tags, sink.reserved)
    known = load_profiles()
    if hardware_class not in known:  # no bundle could ever be built for it
        raise BadRequest(f"no hardware profile {hardware_class!r} (known: {', '.join(sorted(known))})")
    with sink.exclusive(device_id):
        password = new_password()
        new = hash_password(password)
        dev = Device(
            id=device_id, hardware_class=hardware_class, tags=dict(tags), created_at=time.time(),
            broker_password_hash=new, trust_anchors=trust_anchors,
        )  # fmt: skip
        insert_new(session, [dev])  # also hands the connection back: none is held while the broker answers
        _at_broker(session, sink, device_id, new, None, lambda: _remove_rows(session, device_id))
    return dev, password


def insert_new(session: Session, rows: list[Device]) -> None:
    """Insert and commit devices that must not exist yet (Conflict when one does: the primary key says so, in
    the same statement, so no SELECT first). The rows stay loaded and leave the session: what the caller
    returns is what was written, without reading it back (later commits of this session would expire it)."""
    session.add_all(rows)
    keep, session.expire_on_commit = session.expire_on_commit, False
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        taken = set(session.exec(select(Device.id).where(col(Device.id).in_([d.id for d in rows]))).all())
        session.rollback()
        if not taken:
            raise
        names = ", ".join(repr(i) for i in sorted(taken)[:5]) + (f" and {len(taken) - 5} more" * (len(taken) > 5))
        raise Conflict(f"device {names} is already registered" if len(taken) == 1
                       else f"devices {names} are already registered") from None  # fmt: skip
    finally:
        session.expire_on_commit = keep
    for d in rows:
        session.expunge(d)


def rotate_password(
    session: Session, sink: CredentialSink, device_id: str, *, trust_anchors: str | None = None
) -> tuple[Device, str]:
    """A new broker password (and the record of the CA bundle handed with it); the old one stops working and the
    device's live session is dropped once this returns. All or nothing: when the broker does not take the new
    password, the old one stays, and so does the record of what the device was handed before."""
    with sink.exclusive(device_id):
        dev = get(session, device_id)
        old, old_anchors = dev.broker_password_hash, dev.trust_anchors
        password = new_password()
        new = dev.broker_password_hash = hash_password(password)
        dev.trust_anchors = trust_anchors
        session.add(dev)
        session.commit()
        _at_broker(session, sink, device_id, new, old, lambda: _set_hash(session, device_id, old, old_anchors))
    session.refresh(dev)
    return dev, password


def _set_hash(session: Session, device_id: str, value: str, trust_anchors: str | None) -> None:
    dev = session.get(Device, device_id)
    if dev is not None:
        dev.broker_password_hash = value
        dev.trust_anchors = trust_anchors
        session.add(dev)


def reports(session: Session, device_id: str, limit: int, offset: int) -> list[DeviceReport]:
    """The device's stored state reports, oldest (epoch, seq) first."""
    get(session, device_id)
    q = select(DeviceReport).where(DeviceReport.device_id == device_id).order_by(col(DeviceReport.seq))
    return list(session.exec(q.offset(offset).limit(limit)))


def get(session: Session, device_id: str) -> Device:
    dev = session.get(Device, device_id)
    if dev is None:
        raise NotFound(f"no device {device_id!r}")
    return dev


def list_devices(
    session: Session,
    *,
    hardware_class: str | None = None,
    tags: Mapping[str, str] | None = None,
    online: bool | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> list[Device]:
    q = select(Device)
    if hardware_class:
        q = q.where(Device.hardware_class == hardware_class)
    if online is not None:
        q = q.where(Device.online == online)
    rows = list(session.exec(q.order_by(Device.id)))
    if tags:
        rows = [d for d in rows if all(d.tags.get(k) == v for k, v in tags.items())]
    return rows[offset : offset + limit]


def delete(session: Session, sink: CredentialSink, device_id: str, outbox: Outbox | None = None) -> None:
    """Remove a device: first lock it out at the broker (its credentials stop working and the broker drops its
    live session), then clear its retained desired state and presence (a device provisioned later under the same
    id must not start from this one's), then remove it with its reports, telemetry and drift. Its entries in
    rollouts stay, so their history still names it. All or nothing: when the broker cannot lock it out or clear
    its topics, nothing changes."""
    if outbox is not None and not outbox.connected:
        raise Unavailable("the broker is not reachable: the device's retained messages cannot be cleared; "
                          "nothing was changed")  # fmt: skip
    with sink.exclusive(device_id):
        old = get(session, device_id).broker_password_hash
        session.rollback()  # ends the read: no connection is held while the broker answers
        _at_broker(session, sink, device_id, None, old, None)
        try:
            if outbox is not None:
                _clear_retained(outbox, device_id)
            _remove_rows(session, device_id)
            _leave_active_rollouts(session, device_id, time.time())
            session.commit()
        except BaseException:
            session.rollback()
            sink.write(device_id, old)  # the device stays: so do its credentials
            raise


def _clear_retained(outbox: Outbox, device_id: str) -> None:
    """Empty retained payloads on the device's two retained topics. Should the deletion fail after this, the
    server republishes the desired state from the database at its next start or retained-state loss."""
    try:
        outbox.retained([(topics.desired(device_id), b""), (topics.presence(device_id), b"")], "clear")
    except (OSError, RuntimeError, ValueError) as e:
        raise Unavailable(f"the broker did not take the clearing of the device's retained messages ({e}); "
                          "nothing was changed") from None  # fmt: skip


def _leave_active_rollouts(session: Session, device_id: str, now: float) -> None:
    rows = session.exec(
        select(RolloutDevice)
        .join(Rollout, col(Rollout.id) == col(RolloutDevice.rollout_id))
        .where(RolloutDevice.device_id == device_id, col(Rollout.state).in_(ACTIVE))
    )
    for rd in rows:
        if rd.status == "pending":
            session.delete(rd)
        elif set_status(rd, "deleted", "device deleted", now):
            session.add(rd)


def _remove_rows(session: Session, device_id: str) -> None:
    remove_rows(session, [device_id])


def remove_rows(session: Session, device_ids: Collection[str]) -> None:
    """The devices with their reports, telemetry and drift (uncommitted)."""
    for table in (DeviceReport, TelemetryRecord, TelemetryAggregate, DriftScore):
        session.execute(sa_delete(table).where(col(table.device_id).in_(device_ids)))  # type: ignore[attr-defined]
    session.execute(sa_delete(Device).where(col(Device.id).in_(device_ids)))


def set_presence(session: Session, device_id: str, online: bool, at: float) -> bool:
    """Apply a presence message; False if the device is unknown."""
    dev = session.get(Device, device_id)
    if dev is None:
        return False
    dev.online = online
    dev.last_seen = at
    session.add(dev)
    session.commit()
    return True


# --- the fleet at a glance: filtered, paged and counted in SQL, so a 10,000-device fleet stays fast ---------

NO_BUNDLE = "-"  # the bundle filter's value for a device that runs no known bundle yet


@dataclass(frozen=True)
class DeviceFilter:
    hardware_class: str | None = None
    bundle: str | None = None  # running bundle; NO_BUNDLE: none
    state: str | None = None  # the agent's update state (IDLE, DOWNLOADING, ...)
    online: bool | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def where(self, q: Any) -> Any:
        if self.hardware_class:
            q = q.where(Device.hardware_class == self.hardware_class)
        if self.bundle == NO_BUNDLE:
            q = q.where(col(Device.running_bundle).is_(None))
        elif self.bundle:
            q = q.where(Device.running_bundle == self.bundle)
        if self.state:
            q = q.where(Device.state == self.state)
        if self.online is not None:
            q = q.where(Device.online == self.online)
        for k, v in self.tags.items():  # JSON member access: json_extract on SQLite, ->> on PostgreSQL
            q = q.where(col(Device.tags)[k].as_string() == v)
        return q


@dataclass(frozen=True)
class FleetPage:
    devices: list[Device]
    total: int  # devices matching the filter
    # Within the filter: how many devices per hardware class, running bundle, update state and presence.
    facets: dict[str, dict[str, int]]


def fleet_page(session: Session, f: DeviceFilter, *, limit: int = 50, offset: int = 0) -> FleetPage:
    """One page of devices (ordered by id) and the filter's counts, each a single SQL query."""
    validate_tags(f.tags)
    rows = list(session.exec(f.where(select(Device)).order_by(Device.id).offset(offset).limit(limit)))
    total = session.exec(f.where(select(func.count()).select_from(Device))).one()
    facets: dict[str, dict[str, int]] = {}
    for name, column in (("hardware_class", Device.hardware_class), ("bundle", Device.running_bundle),
                         ("state", Device.state), ("online", Device.online)):  # fmt: skip
        q = f.where(select(column, func.count()).select_from(Device)).group_by(column)
        counts = {(NO_BUNDLE if k is None else str(k).lower() if name == "online" else str(k)): int(n)
                  for k, n in session.exec(q).all()}  # fmt: skip
        facets[name] = dict(sorted(counts.items()))
    return FleetPage(rows, int(total), facets)


def hardware_classes(session: Session) -> list[str]:
    return list(session.exec(select(Device.hardware_class).distinct().order_by(Device.hardware_class)))


# --- telemetry over time -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TelemetryPoint:
    """One telemetry window as figures: per channel the calibrated input's mean and standard deviation."""

    epoch: int
    seq: int
    received_at: float
    window_start: int
    bundle_id: str | None
    inferences: int
    alarms: int
    latency_p99_us: int | None
    confidence_hist: list[int]
    channels: list[dict[str, float]]  # [{mean, std}]


def telemetry(session: Session, device_id: str, limit: int = 200) -> list[TelemetryPoint]:
    """The device's newest `limit` telemetry windows, oldest first."""
    get(session, device_id)
    q = (select(TelemetryRecord).where(TelemetryRecord.device_id == device_id)
         .order_by(col(TelemetryRecord.seq).desc()).limit(limit))  # fmt: skip
    out = []
    for r in reversed(list(session.exec(q))):
        p = r.payload
        out.append(
            TelemetryPoint(
                epoch=r.seq >> 32, seq=r.seq & 0xFFFFFFFF, received_at=r.received_at,
                window_start=int(p.get("window_start", 0)), bundle_id=r.bundle_id, inferences=r.inferences,
                alarms=r.alarms, latency_p99_us=p.get("latency_p99_us"), confidence_hist=list(p.get("hist", [])),
                channels=[{"mean": m / 256, "std": observed_std_q8(v) / 256} for m, v in p.get("channels", [])],
            )
        )  # fmt: skip
    return out
