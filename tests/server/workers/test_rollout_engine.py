"""The rollout engine while the broker is unreachable: a desired state committed then is published once the
broker is back, for every device of the round, not only the server's next start (no broker needed here).

The chaos scenario broker-restart caught this: a stage assigned while Mosquitto restarted left all but one of
its devices assigned with no desired state on the broker, and the rollout never ended.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from tinyfleet.protocol import topics
from tinyfleet.protocol.records import decode_desired
from tinyfleet.server.db import migrate
from tinyfleet.server.db.models import Bundle, Device
from tinyfleet.server.db.retry import retry_transient
from tinyfleet.server.rollouts.policy import Stage
from tinyfleet.server.services import publishing, rollouts
from tinyfleet.server.workers.rollout_engine import RolloutEngine

DEVICES = ("d1", "d2", "d3")
DIGEST = {"old": "0a" * 32, "new": "0b" * 32}


class BrokerOutage:
    """An outbox (services.publishing.Outbox) whose broker is down until `connected` is set: publishing raises as
    paho's does when it is not connected (MqttLink.publish -> wait_for_publish)."""

    def __init__(self) -> None:
        self.connected = False
        self.desired: dict[str, int] = {}  # device -> desired_seq the broker holds

    def retained(self, messages: Iterable[tuple[str, bytes]], kind: str) -> int:
        if not self.connected:
            raise RuntimeError("Message publish failed: The client is not currently connected.")
        sent = 0
        for topic, payload in messages:
            if kind == "desired":
                device = next(d for d in DEVICES if topics.desired(d) == topic)
                self.desired[device] = decode_desired(payload).desired_seq
            sent += 1
        return sent

    def stamp(self) -> None:
        pass


def _seed(db: Engine) -> int:
    migrate.upgrade(db)
    with Session(db) as s:
        for b in ("old", "new"):
            s.add(Bundle(bundle_id=b, digest=DIGEST[b], hardware_class="stm32l4", security_counter=1,
                         created=0, size=1, payload_offset=1, uploaded_at=0, uploaded_by="t",
                         status="published"))  # fmt: skip
        for d in DEVICES:
            s.add(Device(id=d, hardware_class="stm32l4", tags={}, created_at=0, broker_password_hash="h",
                         running_bundle="old", running_digest=DIGEST["old"]))  # fmt: skip
        s.commit()
        ro, _ = rollouts.create(s, bundle_id="new", hardware_class=None, tags={}, device_ids=[],
                                stages=[Stage(100)], stratify_by=None, rollback_on_halt=True, actor="t",
                                now=1000.0)  # fmt: skip
        assert ro.id is not None
        return ro.id


def test_desired_states_committed_while_the_broker_is_down_go_out_when_it_is_back(
    engine: Engine, tmp_path: Path
) -> None:
    rid = _seed(engine)
    pub = BrokerOutage()
    eng = RolloutEngine(engine, pub, bundle_dir=tmp_path, clock=lambda: 1000.0)
    eng.step(rid)  # assigns every device and commits; the publication after the commit fails
    with Session(engine) as s:
        assert {rd.device_id: rd.status for rd in rollouts.devices_of(s, rid)} == dict.fromkeys(DEVICES, "assigned")
    assert pub.desired == {}
    eng.tick()  # still down: nothing to do yet
    assert pub.desired == {}
    pub.connected = True  # the broker is back
    eng.tick()
    assert pub.desired == dict.fromkeys(DEVICES, 1)
    pub.desired.clear()
    eng.tick()  # owed no longer: not published again
    assert pub.desired == {}


class Broker(BrokerOutage):
    def __init__(self) -> None:
        super().__init__()
        self.connected = True


def test_a_desired_state_whose_replica_died_before_publishing_it_is_published_by_the_next_leader(
    engine: Engine, tmp_path: Path
) -> None:
    """Found by tests/server/cluster/test_cluster_failover.py: a replica committed a stage's assignments and was
    killed before the broker had the desired states; the replica that took the engine over never sent them."""
    rid = _seed(engine)
    dying = RolloutEngine(engine, BrokerOutage(), bundle_dir=tmp_path, clock=lambda: 1000.0)
    dying.step(rid)  # committed; its link is gone before it can publish, then the replica is gone too
    with Session(engine) as s:
        assert {rd.device_id: rd.status for rd in rollouts.devices_of(s, rid)} == dict.fromkeys(DEVICES, "assigned")
    pub = Broker()
    successor = RolloutEngine(engine, pub, bundle_dir=tmp_path, clock=lambda: 1000.0)  # knows nothing in memory
    successor.tick()
    assert pub.desired == dict.fromkeys(DEVICES, 1)
    pub.desired.clear()
    successor.tick()
    assert pub.desired == {}, "an acknowledged desired state is not owed"
    with Session(engine) as s:
        assert publishing.owed(s) == []


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # replicas share PostgreSQL, never SQLite
def test_the_broker_keeps_the_newest_desired_state_when_two_replicas_publish_one_device(
    engine: Engine, tmp_path: Path
) -> None:
    """A replica publishing a device's desired state holds the device's row until the broker has it, so a newer
    desired state is committed and published only after it: the retained copy is never the older one."""
    rid = _seed(engine)
    RolloutEngine(engine, BrokerOutage(), bundle_dir=tmp_path, clock=lambda: 1000.0).step(rid)  # seq 1 owed
    broker = Broker()
    in_flight, release = threading.Event(), threading.Event()

    class Slow(Broker):
        def retained(self, messages: Iterable[tuple[str, bytes]], kind: str) -> int:
            msgs = list(messages)
            in_flight.set()
            release.wait(10)
            return broker.retained(msgs, kind)

    old = threading.Thread(target=lambda: RolloutEngine(engine, Slow(), bundle_dir=tmp_path).publish_owed())
    old.start()
    assert in_flight.wait(10)

    def commit_newer() -> None:
        with Session(engine) as s:
            dev = s.get(Device, "d1")
            assert dev is not None
            dev.desired_seq += 1
            s.add(dev)
            s.commit()
        with Session(engine) as s:
            publishing.publish_desired(s, broker, ["d1"])

    newer = threading.Thread(target=lambda: retry_transient(commit_newer))
    newer.start()
    time.sleep(0.3)  # the newer commit waits for the older publication's row lock
    release.set()
    old.join(10)
    newer.join(10)
    assert broker.desired["d1"] == 2
    with Session(engine) as s:
        dev = s.get(Device, "d1")
        assert dev is not None and dev.desired_published_seq == dev.desired_seq == 2
