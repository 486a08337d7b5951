"""Work over many devices reads their rows a bounded number of times, not once per device (the statements
counted on the real database, SQLite and PostgreSQL): a batch of state reports reads its devices with one
query, assigning a stage of 1,200 devices reads them in chunks of LOAD_CHUNK, and a rollout's status (its
counts and failures, read at every poll of the API and the dashboard) loads none of its entries, and publishing
a stage's desired states reads the bundles they name once a chunk, not once per device.

The 50,000-device fleet-sim run found three of these reading one row per Session.get: the rows read up front were
dropped again, because the session's identity map holds unchanged rows by weak reference only.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import re
from collections.abc import Iterable, Iterator

from sqlalchemy import Engine, event
from sqlmodel import Session, col, func, select

from tinyfleet.protocol import topics
from tinyfleet.protocol.codes import AgentState
from tinyfleet.protocol.records import StateReport, encode_desired
from tinyfleet.server.db import migrate
from tinyfleet.server.db.models import Bundle, Device, RolloutDevice
from tinyfleet.server.rollouts.policy import Stage
from tinyfleet.server.services import publishing, rollouts
from tinyfleet.server.services.ingest import IngestResult, apply_report, prefetch
from tinyfleet.server.services.rollout_steps import LOAD_CHUNK, Steps

DEVICES = 1200
OLD, NEW = hashlib.sha256(b"old").digest(), hashlib.sha256(b"new").digest()
DEVICE_READ = re.compile(r"^\s*SELECT\b.*\bFROM device\b", re.IGNORECASE | re.DOTALL)
BUNDLE_READ = re.compile(r"^\s*SELECT\b.*\bFROM bundle\b", re.IGNORECASE | re.DOTALL)


def _seed(engine: Engine) -> list[str]:
    migrate.upgrade(engine)
    ids = [f"d{i:05d}" for i in range(DEVICES)]
    with Session(engine) as s:
        for bid, dg in (("old", OLD), ("new", NEW)):
            s.add(Bundle(bundle_id=bid, digest=dg.hex(), hardware_class="stm32l4", security_counter=1, created=0,
                         size=100, payload_offset=64, uploaded_at=0, uploaded_by="t", status="published"))  # fmt: skip
        s.add_all(Device(id=d, hardware_class="stm32l4", created_at=0, broker_password_hash="h", online=True,
                         last_seen=999.0, running_bundle="old", running_digest=OLD.hex()) for d in ids)  # fmt: skip
        s.commit()
    return ids


def _rollout_of_all(engine: Engine) -> int:
    """A one-stage rollout of "new" to every seeded device (all pending); its id."""
    with Session(engine) as s:
        ro, _ = rollouts.create(s, bundle_id="new", hardware_class="stm32l4", tags={}, device_ids=[],
                                stages=[Stage(100)], stratify_by=None, rollback_on_halt=True, actor="t",
                                now=1000.0)  # fmt: skip
        assert ro.id is not None
        return ro.id


@contextlib.contextmanager
def reads(engine: Engine, pattern: re.Pattern[str] = DEVICE_READ) -> Iterator[list[str]]:
    """The statements matching `pattern` (by default: SELECTs on the device table) run inside the block."""
    seen: list[str] = []

    def on_execute(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        if pattern.search(statement):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)


def test_assigning_a_stage_reads_its_devices_in_chunks(engine: Engine) -> None:
    ids = _seed(engine)
    rid = _rollout_of_all(engine)
    with Session(engine) as s, reads(engine) as seen:
        _actions, to_publish = Steps(outbox=None, bundle_dir=None).round(s, rid, 1000.0)
    assert sorted(to_publish) == ids
    assert len(seen) <= math.ceil(DEVICES / LOAD_CHUNK) + 2, f"{len(seen)} reads of the device table"
    with Session(engine) as s:
        assigned = s.exec(select(func.count()).select_from(RolloutDevice).where(RolloutDevice.status == "assigned"))
        assert assigned.one() == DEVICES
        assert {(d.desired_bundle, d.desired_seq) for d in s.exec(select(Device))} == {("new", 1)}


def test_a_batch_of_reports_reads_its_devices_once(engine: Engine) -> None:
    ids = _seed(engine)
    report = StateReport(AgentState.CHECKING, AgentState.DOWNLOADING, 2, 1, 1, 0, 1, NEW, OLD, 0, 0, 0)
    reports = dict.fromkeys(ids, report)
    res = IngestResult()
    with Session(engine) as s, reads(engine) as seen:
        prefetch(s, ids, [(d, r.order) for d, r in reports.items()], ids)
        for d, r in reports.items():
            apply_report(s, d, r, 1001.0, res)
        s.commit()
    assert res.reports == DEVICES
    assert len(seen) == 1, f"{len(seen)} reads of the device table"
    with Session(engine) as s:
        assert {d.state for d in s.exec(select(Device))} == {"DOWNLOADING"}


def test_a_rollouts_status_is_counted_by_the_database(engine: Engine) -> None:
    ids = _seed(engine)
    rid = _rollout_of_all(engine)
    with Session(engine) as s:
        for i, rd in enumerate(s.exec(select(RolloutDevice).order_by(col(RolloutDevice.device_id)))):
            if i < 600:
                rd.status = "succeeded"
            elif i < 700:
                rd.status, rd.failure = "failed", "HealthOutputMismatch" if i < 660 else "DownloadTimeout"
            elif i < 710:
                rd.status, rd.failure = "rolled_back", "HealthLatency"
            s.add(rd)
        s.commit()
    loaded: list[object] = []
    on_load = lambda target, _ctx: loaded.append(target)  # noqa: E731
    event.listen(RolloutDevice, "load", on_load)
    try:
        with Session(engine) as s:
            assert rollouts.counts(s, rid) == {"pending": len(ids) - 710, "assigned": 0, "succeeded": 600,
                                               "failed": 100, "rolled_back": 10}  # fmt: skip
            assert rollouts.failures(s, rid) == {"HealthOutputMismatch": 60, "DownloadTimeout": 40,
                                                 "HealthLatency": 10}  # fmt: skip
    finally:
        event.remove(RolloutDevice, "load", on_load)
    assert loaded == []  # no entry was loaded to be counted


class RecordingOutbox:
    """An outbox (services.publishing.Outbox) whose broker takes everything: the messages it was handed."""

    connected = True

    def __init__(self) -> None:
        self.sent: dict[str, bytes] = {}

    def retained(self, messages: Iterable[tuple[str, bytes]], kind: str) -> int:
        before = len(self.sent)
        self.sent.update(messages)
        return len(self.sent) - before

    def stamp(self) -> None:
        pass


def test_publishing_a_stages_desired_states_reads_its_bundles_once_a_chunk(engine: Engine) -> None:
    ids = _seed(engine)
    with Session(engine) as s:
        for d in s.exec(select(Device)):
            d.desired_bundle, d.rollback_bundle, d.desired_seq = "new", "old", 1
            s.add(d)
        s.commit()
    outbox = RecordingOutbox()
    with Session(engine) as s, reads(engine, BUNDLE_READ) as bundle_reads:
        assert publishing.publish_desired(s, outbox, ids) == DEVICES
    assert len(bundle_reads) <= math.ceil(DEVICES / publishing.DESIRED_CHUNK), f"{len(bundle_reads)} bundle reads"
    want = encode_desired(1, NEW, 100, rollback=False, rollback_digest=OLD)
    assert outbox.sent == {topics.desired(d): want for d in ids}
    with Session(engine) as s:
        assert {d.desired_published_seq for d in s.exec(select(Device))} == {1}
