"""The invariant checks on hand-made facts: each invariant catches what it names, and only that."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tinyfleet.simulator.chaos.invariants import DeviceFacts, Facts, RestartFacts, RolloutFacts, check
from tinyfleet.simulator.chaos.scenarios import SCENARIOS, away_from_baseline
from tinyfleet.simulator.fleet import FleetSpec, plan_devices

OLD, NEW = "app-1-esp", "app-2-esp"


def dev(i: int, running: str | None = NEW, state: str = "IDLE", **kw: object) -> DeviceFacts:
    base = {"device_id": f"d{i}", "hw": "esp", "bricked": None, "sim_error": None, "running": running,
            "last_report_state": state,
            "server_running": running, "server_state": state}  # fmt: skip
    base.update(kw)
    return DeviceFacts(**base)  # type: ignore[arg-type]


def rollout(state: str = "completed", stage: int = 2, status: dict[str, str] | None = None) -> RolloutFacts:
    return RolloutFacts(1, "esp", NEW, OLD, state, stage, status or {"d0": "succeeded", "d1": "succeeded"})


def names(f: Facts) -> list[str]:
    return sorted({v.invariant for v in check(f)})


def test_a_clean_completed_rollout_passes() -> None:
    assert check(Facts([dev(0), dev(1)], [rollout()], "completed")) == []


def test_each_invariant_catches_its_failure() -> None:
    assert names(Facts([dev(0), dev(1, bricked="no verified image")], [rollout()], "completed")) == ["no-bricked"]
    stray = dev(1, running="app-9-esp")
    assert "new-or-previous" in names(Facts([dev(0), stray], [rollout()], "completed"))
    lagging = dev(1, server_state="DOWNLOADING")
    assert names(Facts([dev(0), lagging], [rollout()], "completed")) == ["server-equals-devices"]
    stuck = Facts([dev(0), dev(1, running=OLD)], [rollout("running", 0)], "completed")
    assert names(stuck) == ["rollout-outcome"]


def test_a_simulator_error_fails_the_run() -> None:
    assert names(Facts([dev(0), dev(1, sim_error="KeyError: 'x'")], [rollout()], "completed")) == ["simulator-error"]


def test_a_bad_rollout_must_halt_in_its_first_stage_and_roll_back() -> None:
    back = [dev(0, running=OLD), dev(1, running=OLD)]
    halted = rollout("halted", 0, {"d0": "rolled_back", "d1": "pending"})
    assert check(Facts(back, [halted], "halted")) == []
    late = rollout("halted", 1, {"d0": "rolled_back", "d1": "rolled_back"})
    assert names(Facts(back, [late], "halted")) == ["rollout-outcome"]
    kept = rollout("halted", 0, {"d0": "failed", "d1": "pending"})
    assert names(Facts(back, [kept], "halted")) == ["rollout-outcome"]
    assert names(Facts([dev(0, running=NEW), dev(1, running=OLD)], [halted], "halted")) == ["rollout-outcome"]


def test_drift_must_fall() -> None:
    ok = Facts([dev(0)], [rollout(status={"d0": "succeeded"})], "completed", {"d0": 2.0}, {"d0": 1.5})
    assert check(ok) == []
    assert names(Facts([dev(0)], [rollout(status={"d0": "succeeded"})], "completed", {"d0": 2.0}, {"d0": 2.0})) == [
        "drift-falls"
    ]


def test_a_booted_bank_problem_fails_never_mixed() -> None:
    mixed = dev(1, bank_problem="boot 2, bank 1: app-2-esp: the model payload [4096, 8192) hashes to ...")
    assert names(Facts([dev(0), mixed], [rollout()], "completed")) == ["never-mixed"]


def restart(**kw: object) -> RestartFacts:
    base = {"event": "broker-restart", "pids_before": {"broker": 100}, "pids_after": {"broker": 200},
            "old_still_running": (), "connected_before": 2, "dropped": 2, "online_after": 2,
            "reconnected": 2}  # fmt: skip
    base.update(kw)
    return RestartFacts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("evidence", "needle"), [
    ({"pids_after": {"broker": 100}}, "broker PID 100 before, 100 after"),
    ({"pids_after": {"broker": None}}, "broker PID 100 before, None after"),
    ({"pids_before": {"broker": 100, "server": 7}, "pids_after": {"broker": 200, "server": 7}}, "server PID 7"),
    ({"old_still_running": ("broker",)}, "the old broker (PID 100) still runs"),
    ({"dropped": 0}, "no device lost its connection"),
    ({"reconnected": 1}, "1 of 2 online devices still hold a connection from before"),
])  # fmt: skip
def test_a_restart_without_evidence_fails_restart_happened(evidence: dict[str, object], needle: str) -> None:
    devices, done = [dev(0), dev(1)], [rollout()]
    assert check(Facts(devices, done, "completed", restart=restart())) == []
    violations = check(Facts(devices, done, "completed", restart=restart(**evidence)))
    assert [v.invariant for v in violations] == ["restart-happened"] and needle in violations[0].detail


def test_scenario_faults_are_a_function_of_the_seed() -> None:
    plans = plan_devices(FleetSpec(40, seed=3))
    sc = SCENARIOS["power-cuts"]
    a = [sc.setup(p, 7) for p in plans]
    assert a == [sc.setup(p, 7) for p in plans] and a != [sc.setup(p, 8) for p in plans]
    hit = [s for s in a if s.chaos.cut_at_ops]
    assert 5 <= len(hit) <= 30 and all(1 <= k < 40 for s in hit for k in s.chaos.cut_at_ops)
    for p in plans[:6]:  # the axis reading gravity drifts up, the others down
        drift = away_from_baseline(p, 100.0)
        assert sorted(drift) == [-100.0, -100.0, 100.0]


@pytest.mark.parametrize(("args", "code", "message"), [
    (["chaos", "--scenario", "meteor"], 2, "unknown scenario 'meteor'"),
    (["chaos", "--scenario", "drift", "--devices", "0"], 2, "at least 1"),
])  # fmt: skip
def test_chaos_cli_refuses_bad_input(args: list[str], code: int, message: str) -> None:
    exe = str(Path(sys.executable).with_name("fleet-sim"))
    out = subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == code and message in out.stderr and "Traceback" not in out.stderr
    listing = subprocess.run([exe, "scenarios"], capture_output=True, text=True, timeout=60)
    assert [line.split()[0] for line in listing.stdout.splitlines()] == list(SCENARIOS)


def test_no_report_lost_holds_the_server_to_what_the_broker_acknowledged() -> None:
    sent = frozenset({(1, 1), (1, 2), (1, 3)})
    two = frozenset({(1, 1), (1, 2)})
    ok = dev(0, sent_reports=sent, acked_reports=two, server_reports=two)  # (1, 3) lost unacked: allowed
    assert "no-report-lost" not in names(Facts([ok], [rollout(status={"d0": "succeeded"})], "completed"))
    lost = dev(0, sent_reports=sent, acked_reports=sent, server_reports=frozenset({(1, 1)}))
    assert "no-report-lost" in names(Facts([lost], [rollout(status={"d0": "succeeded"})], "completed"))
    phantom = dev(0, sent_reports=sent, acked_reports=sent, server_reports=sent | {(2, 1)})
    assert "no-report-lost" in names(Facts([phantom], [rollout(status={"d0": "succeeded"})], "completed"))


def test_a_chaos_run_prints_no_traceback() -> None:
    exe = str(Path(sys.executable).with_name("fleet-sim"))
    out = subprocess.run([exe, "chaos", "--devices", "10", "--scenario", "power-cuts", "--seed", "11"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Traceback" not in out.stderr + out.stdout
