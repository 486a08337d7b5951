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
        assert excluded == ["e1: hardware class esp32s3", "a3: security counter above the bundle's 3"]
        assert ro.target["excluded_counts"] == {"hardware class esp32s3": 1,
                                                "security counter above the bundle's 3": 1}  # fmt: skip
        assert ro.target["stratify_by"] == ["site"]
        busy = r"1 of 2 target devices are already in an active rollout \(in rollout 1: 1; e.g. device a1 in rollout 1"
        with pytest.raises(Conflict, match=busy + r"\); skip them with skip_busy"):
            _create(s)
        with pytest.raises(Unprocessable, match="differs from the bundle's 'stm32l4'"):
            _create(s, hardware_class="esp32s3")
        with pytest.raises(Unprocessable, match=r"expired at 1970-01-01T00:01:40Z; devices would refuse it"):
            _create(s, bundle_id="old")
        with pytest.raises(NotFound, match="no device 'zz'"):
            _create(s, device_ids=["zz"])
        with pytest.raises(BadRequest, match="the last stage must reach 100 percent"):
            _create(s, stages=[Stage(50)])
        with pytest.raises(BadRequest, match="percent 10 must be above the previous"):
            _create(s, stages=[Stage(50), Stage(10), Stage(100)])
        with pytest.raises(Unprocessable, match="no registered stm32l4 device with site=nowhere matches the target"):
            _create(s, tags={"site": "nowhere"})


def test_refusals_say_why_with_counts_and_busy_devices_can_be_skipped(engine: Engine) -> None:
    migrate.upgrade(engine)
    with Session(engine) as s:
        _seed(s)
        for i in range(60):  # 60 devices of fleet p, all storing a higher counter than the bundle's
            s.add(Device(id=f"p-{i:02d}", hardware_class="stm32l4", tags={"fleet": "p"}, created_at=0,
                         broker_password_hash="h", security_counter=5))  # fmt: skip
        s.commit()
        with pytest.raises(Unprocessable) as err:
            _create(s, tags={"fleet": "p"})
        assert err.value.message == (
            "no stm32l4 device with fleet=p can take 'b': 60 match the target, all excluded "
            "(security counter above the bundle's 3: 60)"
        )
        first, _ = _create(s, device_ids=["a1"])
        ro, excluded = _create(s, skip_busy=True)  # a1 is busy: left out, the others targeted
        assert [rd.device_id for rd in rollouts.devices_of(s, ro.id)] == ["a2"]
        assert ro.target["excluded_counts"] == {
            "security counter above the bundle's 3": 61, f"in active rollout {first.id}": 1}
