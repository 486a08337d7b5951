"""The rollout engine: persistence and MQTT around the pure decision in policy.py.

Each step reads one rollout's snapshot from the database, asks `policy.decide`, applies the actions in one
transaction, and only after the commit publishes the desired states that changed. If the server dies
between commit and publish, `republish` at the next start publishes every device's desired state
from the database again; a device ignores a (desired_seq, digest) it already has, so this is idempotent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from tinyfleet.server.db.models import Bundle, Device, DriftScore, Rollout, RolloutDevice, TelemetryAggregate
from tinyfleet.server.db.retry import retry_transient
from tinyfleet.server.mqtt.publisher import Publisher
from tinyfleet.server.rollouts import policy, states
from tinyfleet.server.rollouts.leader import LeaderLock
from tinyfleet.server.services import rollouts as rollout_svc
from tinyfleet.server.services.errors import Conflict

log = logging.getLogger("tinyfleet.server.engine")


def _behaviour(agg: TelemetryAggregate | None) -> policy.Behaviour | None:
    if agg is None:
        return None
    return policy.Behaviour(agg.inferences, agg.alarms, tuple(agg.confidence_hist))


def build_view(session: Session, ro: Rollout) -> policy.RolloutView:
    assert ro.id is not None
    views = []
    for rd in rollout_svc.devices_of(session, ro.id):
        base = session.get(TelemetryAggregate, (rd.device_id, rd.previous_bundle)) if rd.previous_bundle else None
        after = session.get(TelemetryAggregate, (rd.device_id, ro.bundle_id))
        ds = session.get(DriftScore, rd.device_id)
        views.append(
            policy.DeviceView(
                device_id=rd.device_id,
                stratum=rd.stratum,
                status=rd.status,  # type: ignore[arg-type]
                stage=rd.stage,
                assigned_at=rd.assigned_at,
                finished_at=rd.finished_at,
                baseline=_behaviour(base),
                after=_behaviour(after),
                drift=ds.score if ds is not None and ds.bundle_id == ro.bundle_id else None,
            )
        )
    return policy.RolloutView(
        rollout_id=ro.id,
        state=ro.state,  # type: ignore[arg-type]
        stage_index=ro.stage_index,
        stages=tuple(rollout_svc.stage_from_json(s) for s in ro.stages),
        devices=tuple(views),
        rollback_on_halt=ro.rollback_on_halt,
    )


class RolloutEngine:
    def __init__(
        self,
        db: Engine,
        publisher: Publisher | None,
        *,
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        housekeeping: Callable[[float], None] | None = None,
        housekeeping_every_s: float = 60.0,
        leader: LeaderLock | None = None,
    ) -> None:
        self.db, self.publisher, self.interval_s, self.clock = db, publisher, interval_s, clock
        self.housekeeping, self.housekeeping_every_s = housekeeping, housekeeping_every_s
        self._last_housekeeping = 0.0
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
                self.tick()
                now = self.clock()
                if self.housekeeping and now - self._last_housekeeping >= self.housekeeping_every_s:
                    self._last_housekeeping = now
                    self.housekeeping(now)
            except Exception:  # the engine must outlive a bad tick; the next one retries from the database
                log.exception("rollout engine tick failed")

    # --- steps -------------------------------------------------------------------------------------------

    def tick(self) -> dict[int, list[policy.Action]]:
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

    def _round(self, rollout_id: int) -> list[policy.Action]:
        """One decision and its effects, as one transaction; the desired states go out after the commit."""
        with Session(self.db) as s:
            ro = s.get(Rollout, rollout_id)
            if ro is None or ro.state != "running":
                return []
            now = self.clock()
            actions = policy.decide(build_view(s, ro), now)
            if not actions:
                return []
            to_publish = self._apply(s, ro, actions, now)
            s.commit()
            self._publish(s, to_publish)
        return actions

    def _apply(self, s: Session, ro: Rollout, actions: list[policy.Action], now: float) -> list[str]:
        assert ro.id is not None
        rds = {rd.device_id: rd for rd in rollout_svc.devices_of(s, ro.id)}
        bundle = s.get(Bundle, ro.bundle_id)
        assert bundle is not None
        publish: list[str] = []
        waiting = None
        for a in actions:
            if isinstance(a, policy.Assign):
                if self.publisher is not None:
                    self.publisher.publish_bundle(s, bundle)
                for dev_id in a.device_ids:
                    publish += self._assign(s, rds[dev_id], bundle, a.stage, now)
                log.info("rollout %d stage %d: assigned %s", ro.id, a.stage + 1, ", ".join(a.device_ids))
            elif isinstance(a, policy.MarkFailed):
                rd = rds[a.device_id]
                if rd.status == "assigned":
                    rd.status, rd.reason, rd.finished_at = "failed", a.reason, now
                    s.add(rd)
            elif isinstance(a, policy.Advance):
                ro.stage_index, ro.stage_started_at = a.to_stage, now
                log.info("rollout %d advances to stage %d", ro.id, a.to_stage + 1)
            elif isinstance(a, policy.Complete):
                ro.state, ro.reason = states.TRANSITIONS[("running", "complete")], None
                log.info("rollout %d completed", ro.id)
            elif isinstance(a, policy.Halt):
                ro.state, ro.reason = states.TRANSITIONS[("running", "halt")], a.reason
                log.warning("rollout %d halted: %s", ro.id, a.reason)
            elif isinstance(a, policy.RollBack):
                for dev_id in a.device_ids:
                    publish += self._roll_back(s, rds[dev_id], now, bundle)
            elif isinstance(a, policy.Wait):
                waiting = a.reason
        ro.waiting_for = waiting
        ro.updated_at = now
        s.add(ro)
        return publish

    def _assign(self, s: Session, rd: RolloutDevice, bundle: Bundle, stage: int, now: float) -> list[str]:
        dev = s.get(Device, rd.device_id)
        assert dev is not None
        rd.stage, rd.assigned_at = stage, now
        prev = s.get(Bundle, dev.running_bundle) if dev.running_bundle else None
        rd.previous_bundle = prev.bundle_id if prev is not None else dev.running_bundle
        if dev.running_digest == bundle.digest:
            rd.status, rd.finished_at, rd.reason = "succeeded", now, "already running"
            s.add(rd)
            return []
        dev.desired_seq += 1
        dev.desired_bundle = bundle.bundle_id
        dev.desired_rollback = False
        dev.rollback_bundle = prev.bundle_id if prev is not None else None
        rd.status, rd.desired_seq = "assigned", dev.desired_seq
        s.add(dev)
        s.add(rd)
        return [dev.id]

    def _roll_back(self, s: Session, rd: RolloutDevice, now: float, new: Bundle) -> list[str]:
        dev = s.get(Device, rd.device_id)
        assert dev is not None
        prev = s.get(Bundle, rd.previous_bundle) if rd.previous_bundle else None
        # A device that confirmed the new bundle stores at least its counter (presence may not say so yet).
        stored = max(dev.security_counter or 0, new.security_counter if rd.status == "succeeded" else 0)
        if prev is not None and prev.security_counter < stored:
            # The device confirmed the new bundle and raised its counter: it would refuse the old one
            # (CounterTooLow). It keeps the new bundle; the rollout records why.
            rd.reason = (f"cannot roll back: {prev.bundle_id} has security counter {prev.security_counter}, "
                         f"the device stores {stored}")  # fmt: skip
            s.add(rd)
            return []
        if prev is not None and prev.status != "retired":
            if self.publisher is not None:
                self.publisher.publish_bundle(s, prev)
            dev.desired_bundle, dev.desired_rollback = prev.bundle_id, True
            rd.reason = f"rolled back to {prev.bundle_id}"
        else:
            # The server never held the bundle the device ran before: it cannot be offered again.
            dev.desired_bundle, dev.desired_rollback = None, False
            rd.reason = "no previous bundle on the server; desired state cleared"
        dev.desired_seq += 1
        dev.rollback_bundle = None
        rd.status = "rolled_back"
        rd.finished_at = rd.finished_at or now
        s.add(dev)
        s.add(rd)
        return [dev.id]

    def _publish(self, s: Session, device_ids: list[str]) -> None:
        if self.publisher is None:
            return
        for dev_id in device_ids:
            dev = s.get(Device, dev_id)
            if dev is not None:
                self.publisher.publish_desired(s, dev)

    # --- operator actions needing MQTT -------------------------------------------------------------------

    def abort(self, rollout_id: int, actor: str, rollback: bool) -> Rollout:
        with self._lock:
            return retry_transient(lambda: self._abort(rollout_id, actor, rollback))

    def _abort(self, rollout_id: int, actor: str, rollback: bool) -> Rollout:
        with Session(self.db) as s:
            ro = rollout_svc.get(s, rollout_id)
            to = states.next_state(ro.state, "abort")
            if to is None:
                allowed = ", ".join(states.sources("abort"))
                raise Conflict(f"rollout {rollout_id} is {ro.state}; cannot abort it (only when {allowed})")
            ro.state, ro.reason, ro.updated_at = to, f"aborted by {actor}", self.clock()
            publish: list[str] = []
            if rollback:
                new = s.get(Bundle, ro.bundle_id)
                assert new is not None
                for rd in rollout_svc.devices_of(s, rollout_id):
                    if rd.status in ("assigned", "succeeded", "failed"):
                        publish += self._roll_back(s, rd, self.clock(), new)
            s.add(ro)
            s.commit()
            self._publish(s, publish)
            s.refresh(ro)
            return ro

    def republish(self) -> tuple[int, int]:
        """At startup: publish every published bundle's blocks and meta again (a broker that crashed may
        have lost retained messages it had not saved yet; the same payloads again change nothing), then
        every device's desired state from the database (see the module docstring). Returns
        (bundles, devices)."""
        if self.publisher is None:
            return (0, 0)
        with Session(self.db) as s:
            published = list(s.exec(select(Bundle).where(Bundle.status == "published")))
            for b in published:
                self.publisher.publish_bundle(s, b, again=True)
            for ro in s.exec(select(Rollout).where(col(Rollout.state).in_(rollout_svc.ACTIVE))):
                b = s.get(Bundle, ro.bundle_id)
                if (
                    b is not None
                    and b.status == "stored"
                    and any(rd.status != "pending" for rd in rollout_svc.devices_of(s, ro.id or 0))
                ):
                    self.publisher.publish_bundle(s, b)
            s.commit()  # bundles that went from stored to published
            devs = list(s.exec(select(Device).where(Device.desired_seq > 0)))
            for dev in devs:
                self.publisher.publish_desired(s, dev)
            return (len(published), len(devs))
