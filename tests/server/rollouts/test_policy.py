"""The rollout decision, tested directly: plain data in, actions out."""

from __future__ import annotations

from dataclasses import replace

from tinyfleet.server.rollouts.policy import (
    Advance,
    Assign,
    Behaviour,
    BehaviourGate,
    Complete,
    DeviceView,
    Halt,
    InstallGate,
    MarkFailed,
    RollBack,
    RolloutView,
    Stage,
    Wait,
    confidence_shift,
    decide,
    pick_stratified,
    stage_target,
)

HIST = (0,) * 12 + (10, 30, 40, 20)


def fleet(n_per_stratum: dict[str, int]) -> tuple[DeviceView, ...]:
    return tuple(DeviceView(f"{s}-{k:03d}", s) for s, n in sorted(n_per_stratum.items()) for k in range(n))


def view(devices, stages=(Stage(1), Stage(10), Stage(50), Stage(100)), stage_index=0, state="running", **kw):
    return RolloutView(1, state, stage_index, tuple(stages), tuple(devices), **kw)


def apply(v: RolloutView, actions, now: float) -> RolloutView:
    """The engine's bookkeeping, reduced to what the policy sees (used to walk a rollout in tests)."""
    devs = {d.device_id: d for d in v.devices}
    state, idx = v.state, v.stage_index
    for a in actions:
        if isinstance(a, Assign):
            for i in a.device_ids:
                devs[i] = replace(devs[i], status="assigned", stage=a.stage, assigned_at=now)
        elif isinstance(a, Advance):
            idx = a.to_stage
        elif isinstance(a, Complete):
            state = "completed"
        elif isinstance(a, Halt):
            state = "halted"
        elif isinstance(a, RollBack):
            for i in a.device_ids:
                devs[i] = replace(devs[i], status="rolled_back")
        elif isinstance(a, MarkFailed):
            devs[a.device_id] = replace(devs[a.device_id], status="failed", finished_at=now)
    return replace(v, state=state, stage_index=idx, devices=tuple(devs.values()))


def install_all(v: RolloutView, now: float, fail: set[str] = frozenset()) -> RolloutView:
    return replace(
        v,
        devices=tuple(
            replace(d, status="failed" if d.device_id in fail else "succeeded", finished_at=now)
            if d.status == "assigned"
            else d
            for d in v.devices
        ),
    )


def test_stage_targets_are_cumulative_ceilings() -> None:
    assert [stage_target(200, p) for p in (1, 10, 50, 100)] == [2, 20, 100, 200]
    assert stage_target(7, 1) == 1 and stage_target(0, 50) == 0 and stage_target(3, 0) == 0


def test_canary_takes_every_stratum_even_above_its_percentage() -> None:
    devs = fleet({"site:a|temp:hot": 90, "site:b|temp:cold": 8, "site:c|temp:hot": 2})
    acts = decide(view(devs), now=0)
    assert len(acts) == 1 and isinstance(acts[0], Assign)
    chosen = acts[0].device_ids
    assert {i.split("-")[0] for i in chosen} == {"site:a|temp:hot", "site:b|temp:cold", "site:c|temp:hot"}
    assert len(chosen) == 3  # 1 % of 100 is 1, but three strata are present
    # deterministic: the same snapshot picks the same devices
    assert decide(view(devs), now=5) == acts


def test_later_stages_keep_the_fleet_mix() -> None:
    devs = fleet({"a": 50, "b": 50})
    chosen = pick_stratified(1, devs, 20, cover_strata=False)
    assert sum(c.startswith("a") for c in chosen) == 10


def test_full_rollout_walks_every_stage_then_completes() -> None:
    v = view(fleet({"a": 60, "b": 40}), stages=(Stage(1), Stage(10), Stage(50), Stage(100, InstallGate(soak_s=30))))
    now, seen = 0.0, []
    for _ in range(40):
        acts = decide(v, now)
        seen += [type(a).__name__ for a in acts]
        if any(isinstance(a, Wait) and "install" in a.reason for a in acts):
            v = install_all(v, now)
        v = apply(v, acts, now)
        now += 10
        if v.state != "running":
            break
    assert v.state == "completed"
    assert all(d.status == "succeeded" for d in v.devices)
    assert [d for d in seen if d in ("Advance", "Complete")] == ["Advance", "Advance", "Advance", "Complete"]
    assert "Halt" not in seen


def test_soak_time_holds_the_stage() -> None:
    v = view(fleet({"a": 10}), stages=(Stage(10, InstallGate(soak_s=100)), Stage(100)))
    v = apply(v, decide(v, 0), 0)
    v = install_all(v, now=50)
    assert isinstance(decide(v, 120)[0], Wait)
    assert decide(v, 151) == [Advance(1)]


def test_a_failed_canary_halts_and_rolls_back_touched_devices() -> None:
    v = view(fleet({"a": 5, "b": 5}), stages=(Stage(20), Stage(100)))
    v = apply(v, decide(v, 0), 0)
    canary = [d.device_id for d in v.devices if d.status == "assigned"]
    v = install_all(v, 10, fail={canary[0]})
    acts = decide(v, 11)
    assert isinstance(acts[0], Halt) and "1 of 2 devices failed" in acts[0].reason and canary[0] in acts[0].reason
    assert acts[1] == RollBack(tuple(sorted(canary, key=lambda i: [d.device_id for d in v.devices].index(i))))
    assert decide(replace(v, rollback_on_halt=False), 11) == [acts[0]]


def test_failure_rate_tolerance() -> None:
    stages = (Stage(100, InstallGate(max_failure_rate=0.25)),)
    v = view(fleet({"a": 8}), stages=stages)
    v = apply(v, decide(v, 0), 0)
    ids = [d.device_id for d in v.devices]
    assert isinstance(decide(install_all(v, 1, fail=set(ids[:2])), 2)[0], Complete)  # 2/8 = 25 %: tolerated
    assert isinstance(decide(install_all(v, 1, fail=set(ids[:3])), 2)[0], Halt)


def test_install_timeout_marks_silent_devices_failed() -> None:
    v = view(fleet({"a": 2}), stages=(Stage(100, InstallGate(install_timeout_s=60)),))
    v = apply(v, decide(v, 0), 0)
    assert isinstance(decide(v, 30)[0], Wait)
    acts = decide(v, 61)
    assert {a.device_id for a in acts if isinstance(a, MarkFailed)} == {"a-000", "a-001"}


def test_clean_install_that_raises_alarms_halts() -> None:
    gate = BehaviourGate(max_alarm_rate_increase=0.05, min_inferences=100)
    v = view(fleet({"a": 4}), stages=(Stage(25, behaviour=gate), Stage(100, behaviour=gate)))
    v = apply(v, decide(v, 0), 0)
    v = install_all(v, 1)
    (canary,) = [d for d in v.devices if d.status == "succeeded"]
    before = Behaviour(1000, 20, HIST)
    # not enough evidence yet: wait for telemetry, don't advance
    little = replace(canary, baseline=before, after=Behaviour(50, 40, HIST))
    acts = decide(replace(v, devices=tuple(little if d is canary else d for d in v.devices)), 100)
    assert isinstance(acts[0], Wait) and "post-update telemetry" in acts[0].reason
    worse = replace(canary, baseline=before, after=Behaviour(500, 100, HIST))
    acts = decide(replace(v, devices=tuple(worse if d is canary else d for d in v.devices)), 100)
    assert isinstance(acts[0], Halt)
    assert "alarm rate 0.020 -> 0.200" in acts[0].reason and acts[1] == RollBack((canary.device_id,))
    same = replace(canary, baseline=before, after=Behaviour(500, 12, HIST))
    assert decide(replace(v, devices=tuple(same if d is canary else d for d in v.devices)), 100) == [Advance(1)]


def test_confidence_collapse_and_drift_halt() -> None:
    low_conf = (40, 30, 20, 10) + (0,) * 12
    assert confidence_shift(HIST, HIST) == 0 and abs(confidence_shift(HIST, low_conf) - 1.0) < 1e-9
    gate = BehaviourGate(max_confidence_shift=0.3, min_inferences=10)
    v = view(fleet({"a": 1}), stages=(Stage(100, behaviour=gate),))
    v = install_all(apply(v, decide(v, 0), 0), 1)
    d = replace(v.devices[0], baseline=Behaviour(100, 0, HIST), after=Behaviour(100, 0, low_conf))
    acts = decide(replace(v, devices=(d,)), 2)
    assert isinstance(acts[0], Halt) and "confidence histogram moved 1.000" in acts[0].reason
    drift_gate = BehaviourGate(max_drift=1.0)
    v2 = replace(v, stages=(Stage(100, behaviour=drift_gate),), devices=(replace(v.devices[0], drift=2.5),))
    assert "drift 2.500 above 1.0" in decide(v2, 2)[0].reason
    assert decide(replace(v2, devices=(replace(v.devices[0], drift=0.4),)), 2) == [Complete()]


def test_paused_halted_and_finished_rollouts_do_nothing() -> None:
    for state in ("paused", "halted", "completed", "aborted"):
        assert decide(view(fleet({"a": 3}), state=state), 0) == []


def test_the_halt_names_each_failed_devices_reason_code_with_counts() -> None:
    stages = (Stage(100, InstallGate(max_failure_rate=0.5)),)
    v = view(fleet({"a": 6}), stages=stages)
    v = apply(v, decide(v, 0), 0)
    codes = ["HealthLatency", "HealthLatency", "InstallTimeout", "TooLarge", None, None]
    v = replace(v, devices=tuple(
        replace(d, status="failed" if c else "succeeded", failure=c, finished_at=1)
        for d, c in zip(v.devices, codes, strict=True)
    ))  # fmt: skip
    (halt, _rollback) = decide(v, 2)
    assert isinstance(halt, Halt)
    assert "4 of 6 devices failed (67% > 50%): HealthLatency 2, InstallTimeout 1, TooLarge 1;" in halt.reason
