"""Creating rollouts: who is targeted, who is excluded and why, and the refusals (no broker traffic needed)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from tinyfleet.server.db import migrate
from tinyfleet.server.db.models import Bundle, Device
from tinyfleet.server.rollouts.policy import Stage
from tinyfleet.server.services import rollouts
from tinyfleet.server.services.errors import BadRequest, Conflict, NotFound, Unprocessable


def _seed(s: Session) -> None:
    for dev, hw, tags, counter in (
        ("a1", "stm32l4", {"site": "a"}, 1),
        ("a2", "stm32l4", {"site": "b"}, None),
        ("a3", "stm32l4", {"site": "a"}, 9),  # stores a higher counter than the bundle
        ("e1", "esp32s3", {"site": "a"}, 1),
    ):
        s.add(Device(id=dev, hardware_class=hw, tags=tags, created_at=0, broker_password_hash="h",
                     security_counter=counter))  # fmt: skip
    for bid, expires in (("b", None), ("old", 100)):
        s.add(Bundle(bundle_id=bid, digest=bid.ljust(64, "0"), hardware_class="stm32l4",
                     security_counter=3, created=0, expires=expires, size=1, payload_offset=1, uploaded_at=0,
                     uploaded_by="t"))  # fmt: skip
    s.commit()


def _create(s: Session, **kw):
    args = dict(bundle_id="b", hardware_class=None, tags={}, device_ids=[], stages=[Stage(50), Stage(100)],
                stratify_by=None, rollback_on_halt=True, actor="t", now=1000.0)  # fmt: skip
    args.update(kw)
    return rollouts.create(s, **args)


def test_target_and_exclusions(engine: Engine) -> None:
    migrate.upgrade(engine)
    with Session(engine) as s:
        _seed(s)
        ro, excluded = _create(s, device_ids=["a1", "a3", "e1"])
        assert [rd.device_id for rd in rollouts.devices_of(s, ro.id)] == ["a1"]
        assert excluded == ["e1: hardware class esp32s3", "a3: stores security counter 9, above the bundle's 3"]
        assert ro.target["stratify_by"] == ["site"]
        with pytest.raises(Conflict, match="device a1 is already in active rollout"):
            _create(s)
        with pytest.raises(Unprocessable, match="differs from the bundle's 'stm32l4'"):
            _create(s, hardware_class="esp32s3")
        with pytest.raises(Unprocessable, match="expired at 100"):
            _create(s, bundle_id="old")
        with pytest.raises(NotFound, match="no device 'zz'"):
            _create(s, device_ids=["zz"])
        with pytest.raises(BadRequest, match="the last stage must reach 100 percent"):
            _create(s, stages=[Stage(50)])
        with pytest.raises(BadRequest, match="percent 10 must be above the previous"):
            _create(s, stages=[Stage(50), Stage(10), Stage(100)])
        with pytest.raises(Unprocessable, match="no registered stm32l4 device matches"):
            _create(s, tags={"site": "nowhere"})
