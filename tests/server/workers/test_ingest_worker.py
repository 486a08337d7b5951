"""The ingest worker against a real SQLite database: it waits out an outage without acknowledging or losing
anything, and one message it cannot store does not hold back the others."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlmodel import Session, select

from tinyfleet.protocol import topics
from tinyfleet.protocol.records import HIST_BINS, ChannelStats, Presence, StateReport, Telemetry
from tinyfleet.server.db import migrate
from tinyfleet.server.db.models import Device, DeviceReport
from tinyfleet.server.metrics import Metrics
from tinyfleet.server.workers.ingest_worker import IngestWorker
from tinyfleet.server.workers.mqtt_link import Incoming

RUNNING = hashlib.sha256(b"running").digest()


def _until(cond: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def _report(device: str, seq: int, mid: int) -> Incoming:
    r = StateReport(0, 1, 1, 1, seq, 0, 0, RUNNING, RUNNING, 0, 0, 1_790_000_000)
    return Incoming(topics.state(device), r.encode(), mid, 1, False)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[Engine, Path]]:
    path = tmp_path / "fleet.db"
    # A short busy timeout: a writer that holds the database makes ingest fail at once, as a long outage would.
    engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 0.05})
    with sqlite3.connect(path) as c:
        c.execute("PRAGMA journal_mode=WAL")  # as the server runs it (server/db/engine.py): readers never wait
    migrate.upgrade(engine)
    with Session(engine) as s:
        for dev in ("d1", "d2"):
            s.add(Device(id=dev, hardware_class="stm32l4", created_at=0, broker_password_hash="h"))
        s.commit()
    yield engine, path
    engine.dispose()


def _stored(engine: Engine) -> list[tuple[str, int]]:
    with Session(engine) as s:
        return sorted((r.device_id, r.seq & 0xFFFFFFFF) for r in s.exec(select(DeviceReport)))


def test_a_database_outage_holds_the_batch_unacknowledged_until_it_is_stored(db: tuple[Engine, Path]) -> None:
    engine, path = db
    metrics, acked = Metrics(), []
    worker = IngestWorker(engine, ack=acked.append, metrics=metrics, drift_threshold=3.0, retry_min_s=0.05,
                          retry_max_s=0.2)  # fmt: skip
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # another writer holds the database for as long as it likes
    worker.start()
    try:
        items = [_report("d1", 1, 11), _report("d2", 1, 12)]
        for item in items:
            worker.submit(item)
        # the transient retries (src/tinyfleet/server/db/retry.py) run out, then the worker waits instead of dropping
        assert _until(lambda: metrics.ingest_waits._value.get() >= 2), "the worker never waited for the database"
        assert acked == [] and _stored(engine) == []
        locker.execute("COMMIT")
        assert _until(lambda: len(acked) == 2)
        assert acked == items
        assert _stored(engine) == [("d1", 1), ("d2", 1)]
    finally:
        locker.close()
        worker.stop()


class _FaultyWorker(IngestWorker):
    """Fails to store one given message for a reason that is not the database's (a defect in ingest)."""

    poison_mid = -1

    def _apply(self, batch: list[Incoming]):  # type: ignore[no-untyped-def]
        if any(item.mid == self.poison_mid for item in batch):
            raise ValueError("ingest defect on this message")
        return super()._apply(batch)


def test_a_message_that_fails_on_its_own_is_logged_acked_and_the_rest_are_stored(
    db: tuple[Engine, Path], caplog: pytest.LogCaptureFixture
) -> None:
    engine, _ = db
    metrics, acked = Metrics(), []
    worker = _FaultyWorker(engine, ack=acked.append, metrics=metrics, drift_threshold=3.0)
    worker.poison_mid = 22
    batch = [_report("d1", 1, 21), _report("d1", 2, 22), _report("d2", 1, 23)]
    worker.store(batch)
    assert _stored(engine) == [("d1", 1), ("d2", 1)]
    assert sorted(i.mid for i in acked) == [21, 22, 23]
    assert metrics.rejected.labels("state")._value.get() == 1
    dropped = [r.getMessage() for r in caplog.records if "dropped the message" in r.getMessage()]
    assert len(dropped) == 1 and topics.state("d1") in dropped[0] and batch[1].payload.hex() in dropped[0]


def _telemetry(device: str, seq: int, mid: int) -> Incoming:
    t = Telemetry(1, seq, 0, 60, 100, 50, 5, 0, 0, 0, 0, 0, 0, RUNNING, (0,) * HIST_BINS, (ChannelStats(512, 1024),))
    return Incoming(topics.telemetry(device), t.encode(), mid, 0, False)


def _presence(device: str, status: int, mid: int) -> Incoming:
    p = Presence(status, 1, 1, 1, RUNNING, "stm32l4", 65536, 0, 1_790_000_000)
    return Incoming(topics.presence(device), p.encode(), mid, 1, False)


def test_online_follows_the_last_message_in_arrival_order(db: tuple[Engine, Path]) -> None:
    """Telemetry is stored in one go per batch, after the other messages: windows a device sent before its will
    (offline) must not bring it back online, while windows after an offline presence do."""
    engine, _ = db
    worker = IngestWorker(engine, ack=lambda _i: None, metrics=Metrics(), drift_threshold=3.0)
    worker.store([_presence("d1", 1, 1), _presence("d2", 1, 2), _telemetry("d1", 1, 3), _presence("d1", 0, 4),
                  _presence("d2", 0, 5), _telemetry("d2", 1, 6)])  # fmt: skip
    with Session(engine) as s:
        assert {d.id: d.online for d in s.exec(select(Device))} == {"d1": False, "d2": True}
