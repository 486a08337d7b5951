"""One rollout as an operator reads it: each stage's progress overall and per stratum, each gate's threshold
beside its current value, and the devices that failed with the reason code their agent reported.

The figures are the ones the decision uses (rollout_steps.build_view feeds rollouts/policy.py), so what the
page shows is what the engine sees.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func
from sqlmodel import Session, col, select

from tinyfleet.protocol.codes import REASON_NAMES, Reason
from tinyfleet.protocol.records import HEALTH_FAILURES
from tinyfleet.server.db.models import DeviceReport, Rollout, RolloutDevice
from tinyfleet.server.rollouts import policy
from tinyfleet.server.rollouts.device_states import STATUSES
from tinyfleet.server.services import rollouts as records
from tinyfleet.server.services.rollout_steps import build_view

# The reports that mean "this install failed" (rollouts/device_states.py:report_event), by name.
FAILURE_REASONS = frozenset(REASON_NAMES[r] for r in HEALTH_FAILURES) | {REASON_NAMES[Reason.PreviouslyFailed]}


@dataclass(frozen=True)
class Bar:
    """Devices by status (device_states.STATUSES) out of `total`."""

    label: str
    total: int
    counts: dict[str, int]


@dataclass(frozen=True)
class Gate:
    name: str
    threshold: str
    current: str  # "-" when there is nothing to measure yet
    ok: bool | None  # None: not measured yet
    verdict: str = ""  # in words: within, exceeded, not met yet, soaking, not measured

    def __post_init__(self) -> None:
        if not self.verdict:
            word = {"successes": "not met yet", "soak": "soaking"}.get(self.name, "exceeded")
            object.__setattr__(self, "verdict", "not measured" if self.ok is None else "within" if self.ok else word)


@dataclass(frozen=True)
class StageView:
    index: int
    percent: float
    target: int  # devices the stage covers, cumulative
    state: str  # done | current | waiting
    overall: Bar
    strata: list[Bar]  # each stratum's devices assigned up to this stage, out of the stratum's devices
    gates: list[Gate]


@dataclass(frozen=True)
class FailedDevice:
    device_id: str
    stratum: str
    stage: int | None
    status: str
    reason: str  # the reason code the agent reported (HealthLatency, ...) or why the server marked it failed
    note: str | None  # what happened since (rolled back, ...)


@dataclass(frozen=True)
class RolloutDetail:
    rollout: Rollout
    counts: dict[str, int]
    stages: list[StageView]
    failed: list[FailedDevice]
    strata: list[str] = field(default_factory=list)

    @property
    def terminal(self) -> bool:
        return self.rollout.state in ("halted", "completed", "aborted")


def _bar(label: str, devices: list[policy.DeviceView], total: int) -> Bar:
    c = Counter(d.status for d in devices)
    return Bar(label, total, {s: c.get(s, 0) for s in STATUSES if s != "pending"})


def _fmt(v: float | None, pct: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v:.1%}" if pct else f"{v:.3f}"


def _gates(view: policy.RolloutView, i: int, now: float, current: bool, failed_ids: set[str]) -> list[Gate]:
    """`failed_ids`: devices whose install failed, including those rolled back since (a halt's rollback)."""
    st = view.stages[i]
    g, b = st.install, st.behaviour
    out: list[Gate] = []
    assigned = [d for d in view.devices if d.status != "pending"]
    failed = [d for d in assigned if d.status == "failed" or d.device_id in failed_ids]
    rate = len(failed) / len(assigned) if assigned and current else None
    out.append(Gate("failure rate", f"<= {g.max_failure_rate:.0%}", _fmt(rate, pct=True),
                    None if rate is None else rate <= g.max_failure_rate))  # fmt: skip
    mine = [d for d in view.devices if d.stage == i]
    ok_n = sum(1 for d in mine if d.status == "succeeded")
    need = min(g.min_successes, len(mine)) if mine else g.min_successes
    out.append(Gate("successes", f">= {g.min_successes}", str(ok_n) if mine else "-",
                    (ok_n >= need) if mine else None))  # fmt: skip
    if g.soak_s:
        finished = [d.finished_at for d in assigned if d.finished_at is not None]
        since = now - max(finished) if finished and current else None
        out.append(Gate("soak", f">= {g.soak_s:g} s", "-" if since is None else f"{since:.0f} s",
                        None if since is None else since >= g.soak_s))  # fmt: skip
    if g.install_timeout_s is not None:
        waiting = [now - d.assigned_at for d in mine if d.status == "assigned" and d.assigned_at is not None]
        oldest = max(waiting) if waiting and current else None
        out.append(Gate("install timeout", f"<= {g.install_timeout_s:g} s",
                        "-" if oldest is None else f"{oldest:.0f} s", None if oldest is None else
                        oldest <= g.install_timeout_s))  # fmt: skip
    updated = [d for d in view.devices if d.status == "succeeded" and (d.stage or 0) <= i]
    if b.max_alarm_rate_increase is not None:
        deltas = [d.after.alarm_rate - d.baseline.alarm_rate for d in updated if d.after and d.baseline
                  and min(d.after.inferences, d.baseline.inferences) >= b.min_inferences]  # fmt: skip
        worst = max(deltas) if deltas else None
        out.append(Gate("alarm rate increase", f"<= {b.max_alarm_rate_increase:.3f}", _fmt(worst),
                        None if worst is None else worst <= b.max_alarm_rate_increase))  # fmt: skip
    if b.max_confidence_shift is not None:
        shifts = [policy.confidence_shift(d.baseline.confidence_hist, d.after.confidence_hist) for d in updated
                  if d.after and d.baseline and min(d.after.inferences, d.baseline.inferences) >= b.min_inferences]
        worst = max(shifts) if shifts else None
        out.append(Gate("confidence shift", f"<= {b.max_confidence_shift:.3f}", _fmt(worst),
                        None if worst is None else worst <= b.max_confidence_shift))  # fmt: skip
    if b.max_drift is not None:
        drifts = [d.drift for d in updated if d.drift is not None]
        worst = max(drifts) if drifts else None
        out.append(Gate("drift score", f"<= {b.max_drift:.3f}", _fmt(worst),
                        None if worst is None else worst <= b.max_drift))  # fmt: skip
    return out


def _failure_reasons(session: Session, ro: Rollout, rds: list[RolloutDevice]) -> dict[str, str]:
    """Per device, the reason code of its report that failed this rollout's install (same desired_seq)."""
    want = {rd.device_id: rd.desired_seq for rd in rds if rd.desired_seq is not None}
    if not want:
        return {}
    q = (select(DeviceReport).where(col(DeviceReport.device_id).in_(list(want)))
         .order_by(col(DeviceReport.seq)))  # fmt: skip
    out: dict[str, str] = {}
    for r in session.exec(q):
        if r.payload.get("desired_seq") != want[r.device_id] or r.device_id in out:
            continue
        if r.state == "FAILED" or r.reason in FAILURE_REASONS:
            out[r.device_id] = r.reason or r.state
    return out


def detail(session: Session, rollout_id: int, now: float | None = None) -> RolloutDetail:
    now = time.time() if now is None else now
    ro = records.get(session, rollout_id)
    view = build_view(session, ro)
    rds = records.devices_of(session, rollout_id)
    counts = {s: 0 for s in STATUSES}
    for d in view.devices:
        counts[d.status] += 1
    strata = sorted({d.stratum for d in view.devices})
    per_stratum = Counter(d.stratum for d in view.devices)
    touched = [rd for rd in rds if rd.status in ("failed", "rolled_back")]
    reasons = _failure_reasons(session, ro, touched)
    failed = []
    for rd in touched:
        why = reasons.get(rd.device_id) or (rd.reason if rd.status == "failed" else None)
        if why is None:
            continue  # rolled back after a halt, but its own install did not fail
        failed.append(FailedDevice(rd.device_id, rd.stratum, rd.stage, rd.status, why,
                                   rd.reason if rd.reason != why else None))  # fmt: skip
    stages = []
    for i, st in enumerate(view.stages):
        upto = [d for d in view.devices if d.stage is not None and d.stage <= i]
        target = policy.stage_target(len(view.devices), st.percent)
        state = "done" if i < ro.stage_index or ro.state == "completed" else "current" if i == ro.stage_index \
            else "waiting"  # fmt: skip
        stages.append(
            StageView(
                index=i, percent=st.percent, target=target, state=state,
                overall=_bar(f"stage {i + 1}", upto, max(len(upto), target)),  # a canary covers every stratum
                strata=[_bar(s, [d for d in upto if d.stratum == s], per_stratum[s]) for s in strata],
                gates=_gates(view, i, now, current=(i == ro.stage_index), failed_ids={f.device_id for f in failed}),
            )
        )  # fmt: skip
    return RolloutDetail(ro, counts, stages, failed, strata)


def summaries(session: Session, state: str | None = None) -> list[tuple[Rollout, dict[str, int]]]:
    """Every rollout (newest first) with its devices counted by status, in one query for the counts."""
    ros = records.list_rollouts(session, state)
    q = select(RolloutDevice.rollout_id, RolloutDevice.status, func.count()).group_by(
        RolloutDevice.rollout_id, RolloutDevice.status
    )
    if ros:
        q = q.where(col(RolloutDevice.rollout_id).in_([r.id for r in ros]))
    by: dict[int, dict[str, int]] = {}
    for rid, status, n in session.exec(q).all():
        by.setdefault(rid, {s: 0 for s in STATUSES})[status] = int(n)
    return [(r, by.get(r.id or 0, {s: 0 for s in STATUSES})) for r in ros]
