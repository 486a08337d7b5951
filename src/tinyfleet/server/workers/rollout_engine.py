"""The rollout engine: the thread that steps running rollouts, one at a time, while this replica holds the
leader lock.

Each step is one transaction of services/rollout_steps.py (a snapshot, the pure decision, its effects), and
only after the commit are the desired states that changed published. Each device's row records the desired
state the broker last acknowledged (services/publishing.py): a desired state committed but not acknowledged,
because the broker was unreachable or the replica that committed it died, is owed, and every tick of the
replica that runs the engine publishes what is owed from the database. A device ignores a (desired_seq,
digest) it already has, so publishing again is harmless.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, select

from tinyfleet.server.db.models import Rollout
from tinyfleet.server.db.retry import retry_transient
from tinyfleet.server.rollouts import policy
from tinyfleet.server.services import presence, publishing
from tinyfleet.server.services.rollout_steps import Steps
from tinyfleet.server.workers.leader import LeaderLock

log = logging.getLogger("tinyfleet.server.engine")


class RolloutEngine:
    def __init__(
        self,
        db: Engine,
        publisher: publishing.Outbox | None,
        *,
        bundle_dir: Path | None = None,
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        housekeeping: Callable[[float], None] | None = None,
        housekeeping_every_s: float = 60.0,
        leader: LeaderLock | None = None,
        presence_timeout_s: float = 300.0,
    ) -> None:
        self.db, self.interval_s, self.clock = db, interval_s, clock
        self.steps = Steps(publisher, bundle_dir, presence_timeout_s)
        self.housekeeping, self.housekeeping_every_s = housekeeping, housekeeping_every_s
        self._last_housekeeping = 0.0
        self.presence_timeout_s = presence_timeout_s
        # expiry is checked often enough to be late by at most a tenth of the timeout (and at most 5 s)
        self.presence_every_s = min(5.0, presence_timeout_s / 10)
        self._last_presence = 0.0
        self.leader = leader
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one step at a time in this process

    # --- thread ------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="tinyfleet-engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(10)
        if self.leader is not None:
            self.leader.release()

    def poke(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                now = self.clock()
                if now - self._last_presence >= self.presence_every_s:
                    self._last_presence = now
                    self.expire_presence(now)
                self.tick()
                now = self.clock()
                if self.housekeeping and now - self._last_housekeeping >= self.housekeeping_every_s:
                    self._last_housekeeping = now
                    self.housekeeping(now)
            except Exception:  # the engine must outlive a bad tick; the next one retries from the database
                log.exception("rollout engine tick failed")

    def expire_presence(self, now: float) -> int:
        def run() -> int:
            with Session(self.db) as s:
                return presence.expire(s, now, self.presence_timeout_s)

        n = retry_transient(run)
        if n:
            log.info("%d device(s) silent for %g s: now offline", n, self.presence_timeout_s)
        return n

    # --- steps -------------------------------------------------------------------------------------------

    def tick(self) -> dict[int, list[policy.Action]]:
        if self.leader is not None and not self.leader.held():
            return {}  # another replica runs the rollouts
        self.publish_owed()
        with Session(self.db) as s:
            ids = [r for r in s.exec(select(Rollout.id).where(Rollout.state == "running")) if r is not None]
        return {rid: self.step(rid) for rid in ids}

    def step(self, rollout_id: int, max_rounds: int = 10) -> list[policy.Action]:
        done: list[policy.Action] = []
        with self._lock:
            for _ in range(max_rounds):
                actions = retry_transient(lambda: self._round(rollout_id))
                if not actions:
                    break
                done += actions
                if any(isinstance(a, policy.Wait | policy.Halt | policy.Complete) for a in actions):
                    break
        return done

    @property
    def publisher(self) -> publishing.Outbox | None:
        return self.steps.outbox

    @publisher.setter
    def publisher(self, outbox: publishing.Outbox | None) -> None:
        self.steps.outbox = outbox

    def _round(self, rollout_id: int) -> list[policy.Action]:
        """One decision and its effects, as one transaction; the desired states go out after the commit."""
        with Session(self.db) as s:
            actions, to_publish = self.steps.round(s, rollout_id, self.clock())
            self._publish(s, to_publish)
        return actions

    def publish_owed(self) -> int:
        """Publish, from the database, the desired states committed but never acknowledged by the broker (its
        outage, or a replica that died between its commit and its publish); -> devices published."""
        if self.publisher is None or not self.publisher.connected:
            return 0
        with self._lock, Session(self.db) as s:
            ids = publishing.owed(s)
            if not ids:
                return 0
            log.info("publishing the owed desired state of %d device(s)", len(ids))
            return self._publish(s, ids)

    def _publish(self, s: Session, device_ids: list[str]) -> int:
        """Publish these devices' committed desired states; -> devices published. When the broker cannot take
        them they stay owed in the database, and a later tick publishes them."""
        if self.publisher is None or not device_ids:
            return 0
        try:
            return retry_transient(lambda: publishing.publish_desired(s, self.publisher, device_ids))
        except RuntimeError as exc:  # LinkError is one too
            log.warning("desired state of %d device(s) not published (%s); again once the broker takes it",
                        len(device_ids), exc)  # fmt: skip
            return 0

    # --- operator actions needing MQTT -------------------------------------------------------------------

    def abort(self, rollout_id: int, actor: str, rollback: bool) -> Rollout:
        with self._lock:
            return retry_transient(lambda: self._abort(rollout_id, actor, rollback))

    def _abort(self, rollout_id: int, actor: str, rollback: bool) -> Rollout:
        with Session(self.db) as s:
            ro, to_publish = self.steps.abort(s, rollout_id, actor, rollback, self.clock())
            self._publish(s, to_publish)
            s.refresh(ro)
            return ro

    def republish(self) -> tuple[int, int]:
        """At startup: every bundle and desired state again (services.publishing.republish); -> (bundles,
        devices)."""
        if self.publisher is None:
            return (0, 0)
        with Session(self.db) as s:
            assert self.steps.bundle_dir is not None
            return publishing.republish(s, self.publisher, self.steps.bundle_dir)
