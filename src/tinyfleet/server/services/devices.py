"""Device registry: provisioning with broker credentials, listing, presence."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping

from sqlmodel import Session, col, select

from tinyfleet.bundles.profiles import load_profiles
from tinyfleet.protocol.topics import DEVICE_ID_RE
from tinyfleet.server.broker.passwords import hash_password, new_password
from tinyfleet.server.db.models import Device, DeviceReport, Rollout, RolloutDevice
from tinyfleet.server.rollouts.states import ACTIVE
from tinyfleet.server.services import credential_sync
from tinyfleet.server.services.credential_sync import CredentialSink
from tinyfleet.server.services.errors import BadRequest, Conflict, NotFound

CLASS_RE = re.compile(r"^[a-z0-9_-]{1,32}$")
TAG_KEY_RE = re.compile(r"^[a-z0-9_-]{1,32}$")
TAG_VALUE_RE = re.compile(r"^[A-Za-z0-9._:+-]{1,64}$")


def validate_identity(device_id: str, hardware_class: str, tags: Mapping[str, str]) -> None:
    if not DEVICE_ID_RE.match(device_id):
        raise BadRequest(f"device id {device_id!r} must be 1-64 of A-Z a-z 0-9 . _ : - (starting alphanumeric)")
    if not CLASS_RE.match(hardware_class):
        raise BadRequest(f"hardware class {hardware_class!r} must be 1-32 of a-z 0-9 _ -")
    if len(tags) > 16:
        raise BadRequest(f"{len(tags)} tags; at most 16 are allowed")
    for k, v in tags.items():
        if not TAG_KEY_RE.match(k):
            raise BadRequest(f"tag name {k!r} must be 1-32 of a-z 0-9 _ -")
        if not isinstance(v, str) or not TAG_VALUE_RE.match(v):
            raise BadRequest(f"tag {k}={v!r}: value must be 1-64 of A-Z a-z 0-9 . _ : + -")


def all_hashes(session: Session) -> dict[str, str]:
    rows = session.exec(select(Device.id, Device.broker_password_hash))  # columns only: no ORM objects
    return dict(rows.all())


def sync_credentials(session: Session, sink: CredentialSink) -> None:
    """After a committed change: return once the broker's files hold it (credential_sync.py)."""
    credential_sync.for_sink(sink).sync(lambda: all_hashes(session))


def provision(
    session: Session, sink: CredentialSink, device_id: str, hardware_class: str, tags: Mapping[str, str]
) -> tuple[Device, str]:
    """Register a device and give it broker credentials. Returns the device and its clear password."""
    validate_identity(device_id, hardware_class, tags)
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
    session.commit()
    sync_credentials(session, sink)  # before refresh: a caller waiting here holds no database connection
    session.refresh(dev)
    return dev, password


def rotate_password(session: Session, sink: CredentialSink, device_id: str) -> tuple[Device, str]:
    """A new broker password; the old one stops working once the broker reloads its password file."""
    dev = get(session, device_id)
    password = new_password()
    dev.broker_password_hash = hash_password(password)
    session.add(dev)
    session.commit()
    sync_credentials(session, sink)  # before refresh: a caller waiting here holds no database connection
    session.refresh(dev)
    return dev, password


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
    dev = get(session, device_id)
    active = session.exec(
        select(Rollout.id)
        .join(RolloutDevice, col(RolloutDevice.rollout_id) == col(Rollout.id))
        .where(RolloutDevice.device_id == device_id, col(Rollout.state).in_(ACTIVE))
    ).first()
    if active is not None:
        raise Conflict(f"device {device_id!r} is in active rollout {active}; abort it or wait for it to end")
    for rd in session.exec(select(RolloutDevice).where(RolloutDevice.device_id == device_id)):
        session.delete(rd)
    session.delete(dev)
    session.commit()
    sync_credentials(session, sink)


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
