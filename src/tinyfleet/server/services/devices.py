"""Device registry: provisioning with broker credentials, listing, presence."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Collection, Mapping

from sqlalchemy import delete as sa_delete
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
from tinyfleet.server.rollouts.states import ACTIVE
from tinyfleet.server.services import credential_sync
from tinyfleet.server.services.credential_sync import CredentialSink
from tinyfleet.server.services.errors import BadRequest, Conflict, NotFound, Unavailable
from tinyfleet.server.services.rollouts import set_status

CLASS_RE = re.compile(r"[a-z0-9_-]{1,32}")
TAG_KEY_RE = re.compile(r"[a-z0-9_-]{1,32}")
TAG_VALUE_RE = re.compile(r"[A-Za-z0-9._:+-]{1,64}")


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
    if len(tags) > 16:
        raise BadRequest(f"{len(tags)} tags; at most 16 are allowed")
    for k, v in tags.items():
        if not TAG_KEY_RE.fullmatch(k):
            raise BadRequest(f"tag name {k!r} must be 1-32 of a-z 0-9 _ -")
        if not isinstance(v, str) or not TAG_VALUE_RE.fullmatch(v):
            raise BadRequest(f"tag {k}={v!r}: value must be 1-64 of A-Z a-z 0-9 . _ : + -")


def all_hashes(session: Session) -> dict[str, str]:
    rows = session.exec(select(Device.id, Device.broker_password_hash))  # columns only: no ORM objects
    return dict(rows.all())


def sync_credentials(session: Session, sink: CredentialSink) -> None:
    """After a committed change: return once the broker's files hold it (credential_sync.py), or raise
    Unavailable. Run before refreshing ORM objects: a caller waiting here holds no database connection."""
    try:
        credential_sync.for_sink(sink).sync(lambda: all_hashes(session))
    except Exception as exc:  # the broker side of the change failed; the caller undoes the database side
        raise Unavailable(f"the broker did not take the credentials: {exc}") from exc


def _commit_at_broker(session: Session, sink: CredentialSink, undo: Callable[[], None]) -> None:
    """Commit a credential change and return once the broker holds it. When the broker does not take it, put
    the database back with `undo`, bring the broker in line with it again (best effort: the next change
    retries), and raise Unavailable saying that nothing changed."""
    session.commit()
    try:
        sync_credentials(session, sink)
    except Unavailable as failure:
        session.rollback()
        undo()
        session.commit()
        with contextlib.suppress(Unavailable):
            sync_credentials(session, sink)
        raise Unavailable(f"{failure.message}; nothing was changed, try again") from failure


def provision(
    session: Session, sink: CredentialSink, device_id: str, hardware_class: str, tags: Mapping[str, str]
) -> tuple[Device, str]:
    """Register a device and give it broker credentials. Returns the device and its clear password. All or
    nothing: when the broker does not take the credentials the device is not registered."""
    validate_identity(device_id, hardware_class, tags, sink.reserved)
    known = load_profiles()
    if hardware_class not in known:  # no bundle could ever be built for it
        raise BadRequest(f"no hardware profile {hardware_class!r} (known: {', '.join(sorted(known))})")
    if session.get(Device, device_id) is not None:
        raise Conflict(f"device {device_id!r} is already registered")
    password = new_password()
    dev = Device(
        id=device_id,
        hardware_class=hardware_class,
        tags=dict(tags),
        created_at=time.time(),
        broker_password_hash=hash_password(password),
    )
    session.add(dev)
    _commit_at_broker(session, sink, lambda: _remove_rows(session, device_id))
    session.refresh(dev)
    return dev, password


def rotate_password(session: Session, sink: CredentialSink, device_id: str) -> tuple[Device, str]:
    """A new broker password; the old one stops working once this returns. All or nothing: when the broker does
    not take the new password, the old one stays."""
    dev = get(session, device_id)
    old = dev.broker_password_hash
    password = new_password()
    dev.broker_password_hash = hash_password(password)
    session.add(dev)
    _commit_at_broker(session, sink, lambda: _set_hash(session, device_id, old))
    session.refresh(dev)
    return dev, password


def _set_hash(session: Session, device_id: str, value: str) -> None:
    dev = session.get(Device, device_id)
    if dev is not None:
        dev.broker_password_hash = value
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


def delete(session: Session, sink: CredentialSink, device_id: str) -> None:
    """Remove a device: first lock it out at the broker (its credentials stop working and the broker drops its
    live session), then remove it with its reports, telemetry and drift. Its entries in rollouts stay, so
    their history still names it. All or nothing: when the broker cannot lock it out, nothing changes."""
    dev = get(session, device_id)
    old = dev.broker_password_hash
    dev.broker_password_hash = hash_password(new_password())  # a password nobody holds: locked out
    session.add(dev)
    _commit_at_broker(session, sink, lambda: _set_hash(session, device_id, old))
    _remove_rows(session, device_id)
    _leave_active_rollouts(session, device_id, time.time())
    session.commit()
    with contextlib.suppress(Unavailable):  # drops the locked line; until then it matches no password
        sync_credentials(session, sink)


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
    for table in (DeviceReport, TelemetryRecord, TelemetryAggregate, DriftScore):
        session.execute(sa_delete(table).where(table.device_id == device_id))  # type: ignore[attr-defined]
    dev = session.get(Device, device_id)
    if dev is not None:
        session.delete(dev)


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
