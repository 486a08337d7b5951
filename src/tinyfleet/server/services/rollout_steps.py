"""A rollout's steps as transactions: read one rollout's snapshot, ask the pure decision (rollouts/policy.py),
apply its actions, and hand back the devices whose desired state changed, to be published after the commit.

Each device's outcome changes only through rollouts/device_states.py: the event and the reason come from
there, the new status from its table.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import and_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from tinyfleet.server.db.models import Bundle, Device, DriftScore, Rollout, RolloutDevice, TelemetryAggregate
from tinyfleet.server.rollouts import device_states, policy, states
from tinyfleet.server.services import presence
from tinyfleet.server.services import rollouts as rollout_records
from tinyfleet.server.services.errors import Conflict
from tinyfleet.server.services.publishing import Outbox, publish_bundle

log = logging.getLogger("tinyfleet.server.engine")


def _behaviour(inferences: int | None, alarms: int | None, hist: list[int] | None) -> policy.Behaviour | None:
    if inferences is None or alarms is None or hist is None:  # no aggregate (the outer join found none)
        return None
    return policy.Behaviour(inferences, alarms, tuple(hist))


def build_view(session: Session, ro: Rollout) -> policy.RolloutView:
    """The rollout's snapshot for the decision, read in one query of plain columns whatever the rollout's size
    (bench/bench_engine.py): each device's entry (locked until the transaction ends, so a decision and its
    effects see the same outcomes while ingest records new ones; PostgreSQL `FOR UPDATE`, SQLite has one
    writer anyway) with its telemetry before and after and its drift score."""
    assert ro.id is not None
    base, after, rd = aliased(TelemetryAggregate), aliased(TelemetryAggregate), RolloutDevice
    q = (
        select(rd.device_id, rd.stratum, rd.status, rd.stage, rd.assigned_at, rd.finished_at, rd.failure,
               base.inferences, base.alarms, base.confidence_hist,
               after.inferences, after.alarms, after.confidence_hist, DriftScore.score, DriftScore.bundle_id)
        .where(rd.rollout_id == ro.id)
        .outerjoin(base, and_(col(base.device_id) == col(rd.device_id),
                              col(base.bundle_id) == col(rd.previous_bundle)))
        .outerjoin(after, and_(col(after.device_id) == col(rd.device_id), col(after.bundle_id) == ro.bundle_id))
        .outerjoin(DriftScore, col(DriftScore.device_id) == col(rd.device_id))
        .order_by(col(rd.device_id))
        .with_for_update(of=rd)
    )  # fmt: skip
    views = [
        policy.DeviceView(
            device_id=dev,
            stratum=stratum,
            status=status,
            stage=stage,
            assigned_at=assigned_at,
            finished_at=finished_at,
            baseline=_behaviour(b_inf, b_alarms, b_hist),
            after=_behaviour(a_inf, a_alarms, a_hist),
            drift=score if score is not None and drift_bundle == ro.bundle_id else None,
            failure=failure,
        )
        for (dev, stratum, status, stage, assigned_at, finished_at, failure, b_inf, b_alarms, b_hist,
             a_inf, a_alarms, a_hist, score, drift_bundle) in session.exec(q)  # type: ignore[call-overload]
    ]  # fmt: skip
    return policy.RolloutView(
        rollout_id=ro.id,
        state=ro.state,  # type: ignore[arg-type]
        stage_index=ro.stage_index,
        stages=tuple(rollout_records.stage_from_json(s) for s in ro.stages),
        devices=tuple(views),
        rollback_on_halt=ro.rollback_on_halt,
    )


LOAD_CHUNK = 500  # device ids per query when a stage's devices are read in (a bound on bound parameters)


def _load_devices(s: Session, device_ids: list[str]) -> list[Device]:
    """Read a stage's devices with a query per LOAD_CHUNK ids, so assigning a stage of thousands costs tens of
    queries, not one per device. The caller holds the list while it works: the session's identity map keeps
    unchanged rows only by weak reference, and Session.get would read each one again."""
    out: list[Device] = []
    for i in range(0, len(device_ids), LOAD_CHUNK):
        out += s.exec(select(Device).where(col(Device.id).in_(device_ids[i : i + LOAD_CHUNK])))
    return out


class Steps:
    """The rollout engine's transactions. `outbox` None: nothing is published (tests, a replica without MQTT)."""

    def __init__(self, outbox: Outbox | None, bundle_dir: Path | None, presence_timeout_s: float = 300.0) -> None:
        self.outbox, self.bundle_dir = outbox, bundle_dir
        self.presence_timeout_s = presence_timeout_s

    def round(self, s: Session, rollout_id: int, now: float) -> tuple[list[policy.Action], list[str]]:
        """One decision and its effects, committed; -> (actions, devices whose desired state to publish)."""
        ro = s.get(Rollout, rollout_id)
        if ro is None or ro.state != "running":
            return [], []
        actions = policy.decide(build_view(s, ro), now)
        if not actions:
            return [], []
        to_publish = self._apply(s, ro, actions, now)
        s.commit()
        return actions, to_publish

    def _publish_bundle(self, s: Session, bundle: Bundle) -> None:
        if self.outbox is not None:
            assert self.bundle_dir is not None, "an engine that publishes needs the bundle directory"
            publish_bundle(s, self.outbox, self.bundle_dir, bundle)

    def _apply(self, s: Session, ro: Rollout, actions: list[policy.Action], now: float) -> list[str]:
        assert ro.id is not None
        rds = {rd.device_id: rd for rd in rollout_records.devices_of(s, ro.id)}
        bundle = s.get(Bundle, ro.bundle_id)
        assert bundle is not None
        publish: list[str] = []
        waiting = None
        for a in actions:
            if isinstance(a, policy.Assign):
                self._publish_bundle(s, bundle)
                _held = _load_devices(s, a.device_ids)
                with s.no_autoflush:  # one flush at commit, not one per device assigned
                    for dev_id in a.device_ids:
                        publish += self._assign(s, rds[dev_id], bundle, a.stage, now)
                log.info("rollout %d stage %d: assigned %s", ro.id, a.stage + 1, ", ".join(a.device_ids))
            elif isinstance(a, policy.MarkFailed):
                if rollout_records.set_status(rds[a.device_id], device_states.TIMED_OUT, a.reason, now):
                    s.add(rds[a.device_id])
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
        alive = presence.is_present(dev.online, dev.last_seen, now, self.presence_timeout_s)
        event, reason = device_states.assign_event(dev.running_digest, bundle.digest, alive)
        rollout_records.set_status(rd, event, reason, now)
        s.add(rd)
        if event == "already_running":
            return []
        dev.desired_seq += 1
        dev.desired_bundle = bundle.bundle_id
        dev.desired_rollback = False
        dev.rollback_bundle = prev.bundle_id if prev is not None else None
        rd.desired_seq = dev.desired_seq
        s.add(dev)
        return [dev.id]

    def _roll_back(self, s: Session, rd: RolloutDevice, now: float, new: Bundle) -> list[str]:
        dev = s.get(Device, rd.device_id)
        assert dev is not None
        prev = s.get(Bundle, rd.previous_bundle) if rd.previous_bundle else None
        plan = device_states.plan_rollback(
            rd.status,
            device_states.PreviousBundle(prev.bundle_id, prev.security_counter, prev.status == "retired")
            if prev is not None
            else None,
            dev.security_counter,
            new.security_counter,
        )
        if plan.event is None:
            rd.reason = plan.reason
            s.add(rd)
            return []
        if plan.desired is not None:
            assert prev is not None
            self._publish_bundle(s, prev)
        dev.desired_bundle, dev.desired_rollback = plan.desired, plan.desired is not None
        dev.desired_seq += 1
        dev.rollback_bundle = None
        rollout_records.set_status(rd, plan.event, plan.reason, now)
        s.add(dev)
        s.add(rd)
        return [dev.id]

    def abort(self, s: Session, rollout_id: int, actor: str, rollback: bool, now: float) -> tuple[Rollout, list[str]]:
        """The operator's abort, committed; -> (rollout, devices whose desired state to publish)."""
        ro = rollout_records.get(s, rollout_id)
        to = states.next_state(ro.state, "abort")
        if to is None:
            allowed = ", ".join(states.sources("abort"))
            raise Conflict(f"rollout {rollout_id} is {ro.state}; cannot abort it (only when {allowed})")
        ro.state, ro.reason, ro.updated_at = to, f"aborted by {actor}", now
        publish: list[str] = []
        if rollback:
            new = s.get(Bundle, ro.bundle_id)
            assert new is not None
            for rd in rollout_records.devices_of(s, rollout_id):
                if rd.status in device_states.ROLLBACK_FROM:
                    publish += self._roll_back(s, rd, now, new)
        s.add(ro)
        s.commit()
        return ro, publish
