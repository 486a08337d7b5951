"""Presence that expires: a device is online while its last presence record said so and it sent something
(presence, a report or telemetry) within `presence_timeout_s`.

The broker publishes a device's will (offline) when its connection dies without a DISCONNECT, but not when a
client disconnects cleanly, and not for a session the broker lost; without a rule of its own the server would
show such devices online for good ("ghosts"). `expire` turns them offline; the next message from the device
turns it online again. docs/operations.md, "Devices and broker access", states the rule.
"""

from __future__ import annotations

from sqlalchemy import func, or_, update
from sqlmodel import Session, col, select

from tinyfleet.server.db.models import Device


def is_present(online: bool, last_seen: float | None, now: float, timeout_s: float) -> bool:
    return online and last_seen is not None and now - last_seen <= timeout_s


def _stale(now: float, timeout_s: float):  # noqa: ANN202 - a SQL expression
    return (col(Device.online).is_(True)) & or_(
        col(Device.last_seen).is_(None), col(Device.last_seen) < now - timeout_s
    )


def expire(session: Session, now: float, timeout_s: float) -> int:
    """Mark offline every device online by its flag but silent for longer than `timeout_s`; -> how many."""
    stale = session.exec(select(func.count()).select_from(Device).where(_stale(now, timeout_s))).one()
    if not stale:
        return 0  # no write transaction (SQLite would take its write lock even for an UPDATE of no rows)
    result = session.exec(update(Device).where(_stale(now, timeout_s)).values(online=False))  # type: ignore[call-overload]
    session.commit()
    return int(result.rowcount or 0)
