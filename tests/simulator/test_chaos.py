"""Every chaos scenario at a small size (50 devices, fixed seed) against a real fleet-server and Mosquitto.

Each run must end with every invariant holding (src/tinyfleet/simulator/chaos/invariants.py); the assertions below also
check that the scenario's faults really happened, so a scenario that silently stopped injecting them fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tinyfleet.simulator.chaos import report, runner
from tinyfleet.simulator.chaos.scenarios import SCENARIOS
from tinyfleet.simulator.server_proc import ServerProcess

DEVICES = 50
SEED = 11


async def _run(name: str, tmp_path: Path, devices: int = DEVICES, seed: int = SEED) -> dict:
    result = await runner.run(SCENARIOS[name], devices, seed, tmp_path / name, timeout_s=120)
    rep = report.to_json(result)
    assert rep["passed"], rep["outcome"]["violations"][:10]
    return rep


def _reasons(rep: dict) -> dict[str, int]:
    return rep["activity"]["report_reasons"]


async def test_bad_firmware_halts_at_canary_and_rolls_back(tmp_path: Path) -> None:
    rep = await _run("bad-firmware", tmp_path)
    assert all(r["state"] == "halted" and r["stage_index"] == 0 for r in rep["outcome"]["rollouts"])
    assert all("install gate (stage 1)" in r["reason"] for r in rep["outcome"]["rollouts"])
    assert _reasons(rep).get("HealthLatency", 0) >= 2  # the devices' own health check caught it
    assert set(rep["outcome"]["devices_by_bundle"]) == {"vibration-1.0.0-esp32s3", "vibration-1.0.0-stm32l4"}


async def test_power_cuts_during_updates_brick_nothing(tmp_path: Path) -> None:
    rep = await _run("power-cuts", tmp_path)
    assert rep["activity"]["power_cuts"] >= 10
    # every boot's bank was re-hashed in Python, and every device's once more at the end
    assert rep["activity"]["bank_checks"] >= rep["activity"]["boots"] + DEVICES
    assert rep["outcome"]["invariants"]["never-mixed"] == "pass"
    assert rep["outcome"]["devices_by_bundle"] == {"vibration-1.1.0-esp32s3": 30, "vibration-1.1.0-stm32l4": 20}


async def test_corrupt_blocks_are_fetched_again(tmp_path: Path) -> None:
    rep = await _run("corrupt-blocks", tmp_path)
    assert rep["activity"]["corrupted_blocks"] >= 10
    assert all(r["state"] == "completed" for r in rep["outcome"]["rollouts"])


async def test_flaky_network(tmp_path: Path) -> None:
    rep = await _run("flaky-network", tmp_path)
    faults = rep["activity"]["network_faults"]
    assert all(faults.get(k, 0) > 0 for k in ("drop-connection", "duplicate", "delay", "duplicate-publish")), faults
    assert all(r["state"] == "completed" for r in rep["outcome"]["rollouts"])


async def test_low_battery_defers_then_installs(tmp_path: Path) -> None:
    rep = await _run("low-battery", tmp_path)
    assert _reasons(rep).get("BatteryLow", 0) >= 5
    assert all(r["state"] == "completed" for r in rep["outcome"]["rollouts"])


async def test_bad_model_halts_at_canary(tmp_path: Path) -> None:
    rep = await _run("bad-model", tmp_path)
    assert all(r["state"] == "halted" and r["stage_index"] == 0 for r in rep["outcome"]["rollouts"])
    assert _reasons(rep).get("HealthOutputMismatch", 0) >= 2  # TFLM on the device disagreed with the vectors


@pytest.mark.parametrize("name", ["broker-restart", "server-restart"])
async def test_restarts_mid_rollout_lose_nothing(name: str, tmp_path: Path) -> None:
    rep = await _run(name, tmp_path)
    assert all(r["state"] == "completed" for r in rep["outcome"]["rollouts"])
    assert rep["outcome"]["invariants"]["restart-happened"] == "pass"
    e = rep["restart"]  # the evidence that it happened, read around the restart
    restarted = {"broker"} if name == "broker-restart" else {"broker", "server"}
    assert set(e["pids_before"]) == restarted and all(e["pids_after"][k] != e["pids_before"][k] for k in restarted)
    assert e["devices_dropped"] >= 1 and e["devices_reconnected"] == e["devices_online_after"] == DEVICES


@pytest.mark.parametrize(("name", "method"), [("broker-restart", "restart_broker"), ("server-restart", "restart")])
async def test_a_suppressed_restart_fails_its_scenario(name: str, method: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """The restart silently does nothing (as a broken service manager would): the scenario must not pass."""
    monkeypatch.setattr(ServerProcess, method, lambda self, down_s: None)
    result = await runner.run(SCENARIOS[name], 6, SEED, tmp_path / name, timeout_s=120)
    rep = report.to_json(result)
    assert not rep["passed"]
    assert {v["invariant"] for v in rep["outcome"]["violations"]} == {"restart-happened"}
    assert rep["restart"]["pids_after"] == rep["restart"]["pids_before"]


async def test_same_seed_same_outcome(tmp_path: Path) -> None:
    a = await _run("power-cuts", tmp_path / "a", devices=20, seed=5)
    b = await _run("power-cuts", tmp_path / "b", devices=20, seed=5)
    assert a["outcome"] == b["outcome"]
    assert a["activity"]["power_cuts"] == b["activity"]["power_cuts"]


async def test_drift_answered_by_calibration_only_bundles_the_same_for_the_same_seed(tmp_path: Path) -> None:
    a = await _run("drift", tmp_path / "a", devices=20, seed=3)
    d = a["outcome"]["drift"]
    assert d["flagged"] and set(d["flagged"]) == set(d["cohort"])
    assert all(a["drift_after"][k] < d["drifted"][k] for k in d["flagged"])
    b = await _run("drift", tmp_path / "b", devices=20, seed=3)
    assert a["outcome"] == b["outcome"]  # cohort, flagged set and their scores before recalibration


async def test_corrupt_blocks_past_the_crc(tmp_path: Path) -> None:
    result = await runner.run(SCENARIOS["corrupt-blocks-sha"], 4, SEED, tmp_path / "sha", timeout_s=20)
    rep = report.to_json(result)
    assert rep["passed"], rep["outcome"]["violations"][:5]
