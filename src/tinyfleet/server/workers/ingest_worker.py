"""Drains device messages from the MQTT link in batches: one transaction per batch, acks after commit.

The link delivers on paho's thread; this worker owns the database side. A batch is at most `max_batch`
messages or whatever arrived within `max_wait_s`. If a batch hits a uniqueness conflict (another replica
stored the same report between our check and our commit), it is replayed one message per transaction.

Nothing is acknowledged before it is stored, and a batch is never dropped because the database failed:
while the database is unreachable (or locked past the transient retries) the worker keeps the batch and tries
again with backoff, and the broker keeps the unacknowledged messages for the server's session. Only a message
that fails on its own for another reason (a defect, not an outage) is logged with its payload and acknowledged,
so that one message cannot stall ingest forever.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlmodel import Session

from tinyfleet.protocol import topics
from tinyfleet.protocol.records import (
    ProtocolError,
    Telemetry,
    decode_presence,
    decode_report,
    decode_telemetry,
)
from tinyfleet.server.db.retry import retry_transient
from tinyfleet.server.metrics import Metrics
from tinyfleet.server.services.ingest import IngestResult, apply_presence, apply_report, apply_telemetry_batch, prefetch
from tinyfleet.server.workers.mqtt_link import Incoming

log = logging.getLogger("tinyfleet.server.ingest")


class IngestWorker:
    def __init__(
        self,
        engine: Engine,
        ack: Callable[[Incoming], None],
        metrics: Metrics,
        drift_threshold: float,
        shift_threshold: float = 1.0,
        on_outcome: Callable[[], None] = lambda: None,
        max_batch: int = 500,
        max_wait_s: float = 0.05,
        clock: Callable[[], float] = time.time,
        retry_min_s: float = 0.2,
        retry_max_s: float = 5.0,
    ) -> None:
        self.engine, self.ack, self.metrics = engine, ack, metrics
        self.drift_threshold = drift_threshold
        self.shift_threshold = shift_threshold
        self.on_outcome = on_outcome
        self.max_batch, self.max_wait_s = max_batch, max_wait_s
        self.clock = clock
        self.retry_min_s, self.retry_max_s = retry_min_s, retry_max_s
        self.queue: queue.Queue[Incoming] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.persisted = 0

    def submit(self, item: Incoming) -> None:
        self.queue.put(item)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tinyfleet-ingest", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                first = self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            deadline = time.monotonic() + self.max_wait_s
            while len(batch) < self.max_batch:
                try:
                    batch.append(self.queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            self.store(batch)

    def store(self, batch: list[Incoming]) -> None:
        """Process `batch`, waiting out a database outage (see the module doc); returns once every message in
        it is stored and acknowledged, or the worker is stopping (then the broker redelivers them)."""
        exc = self._until_stored(batch)
        if exc is None:
            return
        log.error("ingest batch of %d message(s) failed; storing them one by one", len(batch), exc_info=exc)
        for item in batch:
            alone = self._until_stored([item])
            if alone is not None:
                self._reject(item, alone)

    def _until_stored(self, batch: list[Incoming]) -> Exception | None:
        """Process `batch`, retrying with backoff while the database is out. Returns the error that is not an
        outage (the batch's own fault), or None once stored or when the worker stops."""
        delay = self.retry_min_s
        while not self._stop.is_set():
            try:
                self.process(batch)
                return None
            except Exception as exc:
                if not (isinstance(exc, DBAPIError) and _outage(exc)):
                    return exc
                log.warning("ingest of %d message(s) waits for the database (%s); next try in %.1f s",
                            len(batch), exc.orig, delay)  # fmt: skip
                self.metrics.ingest_waits.inc()
                self._stop.wait(delay)
                delay = min(delay * 2, self.retry_max_s)
        return None

    def _reject(self, item: Incoming, exc: Exception) -> None:
        log.error("dropped the message on %s after an unexpected error (%s: %s); payload %s",
                  item.topic, type(exc).__name__, exc, item.payload.hex())  # fmt: skip
        self.metrics.rejected.labels(item.topic.rsplit("/", 1)[-1]).inc()
        self.ack(item)

    def process(self, batch: list[Incoming]) -> IngestResult:
        try:
            res = retry_transient(lambda: self._apply(batch))
        except IntegrityError:
            res = IngestResult()
            for item in batch:
                try:
                    r1 = retry_transient(lambda item=item: self._apply([item]))
                except IntegrityError:
                    r1 = IngestResult(duplicates=1)
                    self.ack(item)
                res.reports += r1.reports
                res.telemetry += r1.telemetry
                res.duplicates += r1.duplicates
                res.outcomes += r1.outcomes
        self.metrics.reports.labels("stored").inc(res.reports)
        self.metrics.reports.labels("duplicate").inc(res.duplicates)
        self.metrics.telemetry.labels("stored").inc(res.telemetry)
        if res.lags:
            self.metrics.ingest_lag.set(res.lags[-1])
        self.persisted += res.reports + res.telemetry + res.presence
        if res.outcomes:
            self.on_outcome()
        return res

    def _apply(self, batch: list[Incoming]) -> IngestResult:
        res = IngestResult()
        now = self.clock()
        telemetry: list[tuple[str, Telemetry]] = []
        with Session(self.engine) as s:
            prefetch(s, *_batch_keys(batch))
            for item in batch:
                dev = topics.device_from_topic(item.topic)
                kind = item.topic.rsplit("/", 1)[-1]
                if dev is None or not item.payload:
                    continue  # e.g. a cleared retained presence
                try:
                    if kind == "state":
                        apply_report(s, dev, decode_report(item.payload), now, res)
                    elif kind == "telemetry":
                        telemetry.append((dev, decode_telemetry(item.payload)))
                    elif kind == "presence":
                        p = decode_presence(item.payload)
                        if any(d == dev for d, _t in telemetry):
                            # Telemetry is a sign of life: applied after this presence, windows sent before a
                            # will (offline) would bring the device back online. Arrival order decides.
                            apply_telemetry_batch(s, telemetry, now, self.drift_threshold, res, self.shift_threshold)
                            telemetry = []
                        apply_presence(s, dev, p, now, res, live=not item.retain)
                except ProtocolError as exc:
                    self.metrics.malformed.labels(kind).inc()
                    log.warning("dropped %s from %s: %s", kind, dev, exc)
            apply_telemetry_batch(s, telemetry, now, self.drift_threshold, res, self.shift_threshold)
            s.commit()
        for item in batch:
            self.ack(item)
        return res


def _batch_keys(batch: list[Incoming]) -> tuple[list[str], list[tuple[str, int]], list[str]]:
    """For services.ingest.prefetch: the devices a batch is from, the (device, report order) of its
    well-formed state reports, and the devices with a report or a presence in it."""
    ids: list[str] = []
    keys: list[tuple[str, int]] = []
    outcomes: list[str] = []
    for item in batch:
        dev = topics.device_from_topic(item.topic)
        if dev is None or not item.payload:
            continue
        ids.append(dev)
        kind = item.topic.rsplit("/", 1)[-1]
        if kind == "state":
            with contextlib.suppress(ProtocolError):
                keys.append((dev, decode_report(item.payload).order))
        if kind in ("state", "presence"):
            outcomes.append(dev)
    return ids, keys, outcomes


def _outage(exc: DBAPIError) -> bool:
    """The database could not run the transaction (down, connection lost, locked): not the message's fault."""
    return isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated
