"""The rollout decision: a pure function (rollout state, device outcomes, behaviour evidence, clock) -> actions.

Theory of operation. A rollout targets N devices and walks through stages; stage i covers the first
`ceil(N * percent_i / 100)` devices (cumulative). Each call to `decide` looks at one snapshot and returns
what to do now; the engine applies the actions, persists them, and calls again later. Nothing here
reads a clock, a database or a broker, so every rule is tested directly (tests/server/rollouts/test_policy.py).
A device's own outcome (installed, failed, rolled back) follows the table in device_states.py.

Order of checks on a running rollout, first match wins:
1. devices assigned longer than `install_timeout_s` without an outcome are marked failed;
2. install gate: failed / assigned above `max_failure_rate` -> halt;
3. behaviour gate: any updated device whose model got worse than its own pre-update baseline
   (alarm rate up by more than allowed, confidence histogram moved by more than allowed in total variation,
   drift score above the limit) -> halt;
4. the stage is not yet full -> assign devices, stratified (the first stage takes one device from every
   stratum before any stratum gets a second);
5. the stage is complete (every assigned device finished, at least `min_successes` succeeded, every
   succeeded device has behaviour evidence when a behaviour gate is set, and `soak_s` has passed since the
   last outcome) -> advance, or complete after the last stage;
6. otherwise wait, saying for what.
A halt rolls back every device that was assigned, updated or failed, when the rollout's policy says so.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal

from tinyfleet.server.rollouts.device_states import (
    ROLLBACK_FROM,
    DeviceStatus,
    format_failures,
    group_failures,
)

RolloutState = Literal["running", "paused", "halted", "completed", "aborted"]


@dataclass(frozen=True)
class InstallGate:
    min_successes: int = 1
    max_failure_rate: float = 0.0
    soak_s: float = 0.0
    install_timeout_s: float | None = None


@dataclass(frozen=True)
class BehaviourGate:
    max_alarm_rate_increase: float | None = None  # absolute, e.g. 0.05 = five more alarms per 100 inferences
    max_confidence_shift: float | None = None  # total variation distance of the confidence histograms, 0..1
    max_drift: float | None = None  # drift score (src/tinyfleet/server/drift.py)
    min_inferences: int = 100  # evidence needed on each side before a device is judged

    @property
    def enabled(self) -> bool:
        return any(v is not None for v in (self.max_alarm_rate_increase, self.max_confidence_shift, self.max_drift))


@dataclass(frozen=True)
class Stage:
    percent: float
    install: InstallGate = field(default_factory=InstallGate)
    behaviour: BehaviourGate = field(default_factory=BehaviourGate)


@dataclass(frozen=True)
class Behaviour:
    """Telemetry totals of one device on one bundle."""

    inferences: int
    alarms: int
    confidence_hist: tuple[int, ...]

    @property
    def alarm_rate(self) -> float:
        return self.alarms / self.inferences if self.inferences else 0.0


@dataclass(frozen=True)
class DeviceView:
    device_id: str
    stratum: str
    status: DeviceStatus = "pending"
    stage: int | None = None
    assigned_at: float | None = None
    finished_at: float | None = None
    baseline: Behaviour | None = None  # on the bundle it ran before this rollout
    after: Behaviour | None = None  # on the rollout's bundle
    drift: float | None = None
    failure: str | None = None  # reason code of a failed device (device_states.failure_code)


@dataclass(frozen=True)
class RolloutView:
    rollout_id: int
    state: RolloutState
    stage_index: int
    stages: tuple[Stage, ...]
    devices: tuple[DeviceView, ...]
    rollback_on_halt: bool = True


# --- actions ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assign:
    device_ids: tuple[str, ...]
    stage: int


@dataclass(frozen=True)
class MarkFailed:
    device_id: str
    reason: str


@dataclass(frozen=True)
class Advance:
    to_stage: int


@dataclass(frozen=True)
class Complete:
    pass


@dataclass(frozen=True)
class Halt:
    reason: str


@dataclass(frozen=True)
class RollBack:
    device_ids: tuple[str, ...]


@dataclass(frozen=True)
class Wait:
    reason: str


Action = Assign | MarkFailed | Advance | Complete | Halt | RollBack | Wait


# --- pure helpers ----------------------------------------------------------------------------------------


def stage_target(total: int, percent: float) -> int:
    if total == 0 or percent <= 0:
        return 0
    return min(total, max(1, math.ceil(total * percent / 100 - 1e-9)))


def confidence_shift(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """Total variation distance between two histograms (0 = same shape, 1 = disjoint)."""
    sa, sb = sum(a), sum(b)
    if not sa or not sb or len(a) != len(b):
        return 0.0
    return 0.5 * sum(abs(x / sa - y / sb) for x, y in zip(a, b, strict=True))


def _order_key(rollout_id: int, device_id: str) -> str:
    # Deterministic shuffle: the same rollout picks the same devices after a restart.
    return hashlib.sha256(f"{rollout_id}:{device_id}".encode()).hexdigest()


def pick_stratified(rollout_id: int, devices: tuple[DeviceView, ...], count: int, cover_strata: bool) -> list[str]:
    """Choose `count` pending devices; with `cover_strata`, at least one per stratum not yet represented.

    Strata are filled in rounds (every stratum gets its next device before any gets another), so the
    sample keeps the fleet's mix instead of a random draw that can miss a small stratum.
    """
    assigned_per: dict[str, int] = defaultdict(int)
    pending: dict[str, list[str]] = defaultdict(list)
    for d in devices:
        if d.status == "pending":
            pending[d.stratum].append(d.device_id)
        else:
            assigned_per[d.stratum] += 1
    for ids in pending.values():
        ids.sort(key=lambda i: _order_key(rollout_id, i))
    if cover_strata:
        count = max(count, sum(1 for s in pending if assigned_per[s] == 0))
    chosen: list[str] = []
    while len(chosen) < count and any(pending.values()):
        # the stratum with the fewest devices assigned so far goes next; ties by name
        s = min((s for s, ids in pending.items() if ids), key=lambda s: (assigned_per[s], s))
        chosen.append(pending[s].pop(0))
        assigned_per[s] += 1
    return chosen


def behaviour_verdict(d: DeviceView, gate: BehaviourGate) -> str | None:
    """Why this updated device's model got worse, or None."""
    if gate.max_drift is not None and d.drift is not None and d.drift > gate.max_drift:
        return f"device {d.device_id}: drift {d.drift:.3f} above {gate.max_drift}"
    if d.after is None or d.baseline is None:
        return None
    if d.after.inferences < gate.min_inferences or d.baseline.inferences < gate.min_inferences:
        return None
    if gate.max_alarm_rate_increase is not None:
        delta = d.after.alarm_rate - d.baseline.alarm_rate
        if delta > gate.max_alarm_rate_increase:
            return (
                f"device {d.device_id}: alarm rate {d.baseline.alarm_rate:.3f} -> {d.after.alarm_rate:.3f} "
                f"(+{delta:.3f} > {gate.max_alarm_rate_increase})"
            )
    if gate.max_confidence_shift is not None:
        shift = confidence_shift(d.baseline.confidence_hist, d.after.confidence_hist)
        if shift > gate.max_confidence_shift:
            return f"device {d.device_id}: confidence histogram moved {shift:.3f} > {gate.max_confidence_shift}"
    return None


def has_evidence(d: DeviceView, gate: BehaviourGate) -> bool:
    if not gate.enabled:
        return True
    if gate.max_drift is not None and d.drift is None:
        return False
    needs_hist = gate.max_alarm_rate_increase is not None or gate.max_confidence_shift is not None
    if needs_hist:
        return (
            d.after is not None
            and d.after.inferences >= gate.min_inferences
            and (d.baseline is None or d.baseline.inferences >= gate.min_inferences)
        )
    return True


# --- the decision ----------------------------------------------------------------------------------------


def _halt(view: RolloutView, reason: str) -> list[Action]:
    actions: list[Action] = [Halt(reason)]
    if view.rollback_on_halt:
        # failed devices reverted on their own; their desired state still goes back so it names what they run
        touched = tuple(d.device_id for d in view.devices if d.status in ROLLBACK_FROM)
        if touched:
            actions.append(RollBack(touched))
    return actions


def decide(view: RolloutView, now: float) -> list[Action]:
    if view.state != "running" or not view.stages:
        return []
    i = view.stage_index
    stage = view.stages[i]
    devices = view.devices

    timeout = stage.install.install_timeout_s
    if timeout is not None:
        late = [
            d for d in devices if d.status == "assigned" and d.assigned_at is not None and now - d.assigned_at > timeout
        ]
        if late:
            return [MarkFailed(d.device_id, f"no install outcome within {timeout:g} s") for d in late]

    assigned = [d for d in devices if d.status != "pending"]
    failed = [d for d in assigned if d.status == "failed"]
    if assigned and len(failed) / len(assigned) > stage.install.max_failure_rate:
        return _halt(
            view,
            f"install gate (stage {i + 1}): {len(failed)} of {len(assigned)} devices failed "
            f"({len(failed) / len(assigned):.0%} > {stage.install.max_failure_rate:.0%}): "
            f"{format_failures(group_failures([d.failure or 'Failed' for d in failed]))}; "
            f"first: {failed[0].device_id}",
        )

    updated = [d for d in devices if d.status == "succeeded"]
    for d in updated:
        gate = view.stages[d.stage if d.stage is not None else i].behaviour
        why = behaviour_verdict(d, gate)
        if why:
            return _halt(view, f"behaviour gate: {why}")

    target = stage_target(len(devices), stage.percent)
    if len(assigned) < target or (i == 0 and not assigned):
        chosen = pick_stratified(view.rollout_id, devices, target - len(assigned), cover_strata=(i == 0))
        if chosen:
            return [Assign(tuple(chosen), i)]

    waiting_install = [d for d in assigned if d.status == "assigned"]
    if waiting_install:
        return [Wait(f"stage {i + 1}: waiting for {len(waiting_install)} device(s) to install")]
    stage_successes = [d for d in updated if d.stage == i]
    needed = min(stage.install.min_successes, len([d for d in assigned if d.stage == i]))
    if len(stage_successes) < needed:
        return [Wait(f"stage {i + 1}: {len(stage_successes)} of {needed} required successes")]
    no_evidence = [d.device_id for d in updated if not has_evidence(d, view.stages[d.stage or 0].behaviour)]
    if no_evidence:
        return [Wait(f"stage {i + 1}: waiting for post-update telemetry from {', '.join(sorted(no_evidence)[:5])}")]
    finished = [d.finished_at for d in assigned if d.finished_at is not None]
    last = max(finished) if finished else now
    if now - last < stage.install.soak_s:
        return [Wait(f"stage {i + 1}: soaking until {last + stage.install.soak_s:.0f}")]
    if i + 1 < len(view.stages):
        return [Advance(i + 1)]
    return [Complete()]
