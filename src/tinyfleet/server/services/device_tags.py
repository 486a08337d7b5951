"""Editing a registered device's tags. A rollout keeps the strata it computed when it was created; new tags
count for rollouts created afterwards."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlmodel import Session

from tinyfleet.server.db.models import Device
from tinyfleet.server.services import devices
from tinyfleet.server.services.errors import Conflict


def update_tags(session: Session, device_id: str, set_: Mapping[str, str], remove: Sequence[str]) -> Device:
    """Remove the `remove` names, then set `set_`; the result is checked like a provisioning request's tags."""
    dev = devices.get(session, device_id)
    tags = {k: v for k, v in dev.tags.items() if k not in set(remove)}
    tags.update(set_)
    if len(tags) > devices.MAX_TAGS:  # a well-formed change that this device's current tags make too many
        raise Conflict(f"device {device_id!r} would have {len(tags)} tags; at most {devices.MAX_TAGS} are allowed")
    devices.validate_tags(tags)
    dev.tags = tags  # a new dict: the JSON column is saved only when reassigned
    session.add(dev)
    session.commit()
    session.refresh(dev)
    return dev
