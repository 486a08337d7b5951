"""The rollout engine: the thread that steps running rollouts, one at a time, while this replica holds the
leader lock.

Each step is one transaction of services/rollout_steps.py (a snapshot, the pure decision, its effects), and
only after the commit are the desired states that changed published. If the server dies between commit and
publish, `republish` at the next start publishes every device's desired state from the database again; a
device ignores a (desired_seq, digest) it already has, so this is idempotent. If the broker cannot be reached
then (it restarts while the server runs on), the devices whose desired state did not go out are owed one:
each tick publishes their current desired state again once the link is back.
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
from tinyfleet.server.services import publishing
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
    ) -> None:
        self.db, self.interval_s, self.clock = db, interval_s, clock
        self.steps = Steps(publisher, bundle_dir)
        self.housekeeping, self.housekeeping_every_s = housekeeping, housekeeping_every_s
        self._last_housekeeping = 0.0
        self.leader = leader
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one step at a time in this process
        self._owed: set[str] = set()  # devices whose committed desired state has not reached the broker

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
                self.tick()
                now = self.clock()
                if self.housekeeping and now - self._last_housekeeping >= self.housekeeping_every_s:
                    self._last_housekeeping = now
                    self.housekeeping(now)
            except Exception:  # the engine must outlive a bad tick; the next one retries from the database
                log.exception("rollout engine tick failed")

    # --- steps -------------------------------------------------------------------------------------------

    def tick(self) -> dict[int, list[policy.Action]]:
        self.publish_owed()
        if self.leader is not None and not self.leader.held():
            return {}  # another replica runs the rollouts
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

    def publish_owed(self) -> None:
        """Publish, from the database, the desired states a broker outage kept from going out after their
        commit, once the server's link is connected again."""
        if not self._owed or self.publisher is None or not self.publisher.connected:
            return
        with self._lock, Session(self.db) as s:
            self._publish(s, sorted(self._owed))

    def _publish(self, s: Session, device_ids: list[str]) -> None:
        """Publish these devices' committed desired states. When the broker cannot be reached (paho raises
        RuntimeError: not connected), they and the rest of the list are owed: their changes are committed, so
        no later round would publish them and the devices would wait for them forever."""
        if self.publisher is None:
            return
        for i, dev_id in enumerate(device_ids):
            try:
                publishing.publish_desired(s, self.publisher, [dev_id])
            except RuntimeError as exc:  # LinkError is one too
                self._owed.update(device_ids[i:])
                log.warning("desired state of %d device(s) not published (%s); again once the broker is back",
                            len(device_ids) - i, exc)  # fmt: skip
                return
            self._owed.discard(dev_id)

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
