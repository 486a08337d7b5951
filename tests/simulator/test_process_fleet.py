"""A fleet over two worker processes (each its own asyncio loop) takes a staged rollout to completion, and the
world reads it as one fleet: the merged view agrees with the server's view of every device."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tinyfleet.simulator.chaos.scenarios import GOOD, STAGES
from tinyfleet.simulator.fleet import FleetSpec
from tinyfleet.simulator.releases import bundle_id
from tinyfleet.simulator.world import BASE, World

DEVICES = 200


async def test_two_worker_processes_run_one_fleet_through_a_rollout(tmp_path: Path) -> None:
    w = World(tmp_path / "world", FleetSpec(DEVICES, seed=5), workers=2)
    try:
        await w.start()
        assert w.procs is not None and len(w.procs.pids) == 2 and not w.fleet.devices  # no device in this process
        assert await w.settle({bundle_id(BASE, hw) for hw in w.hws}, timeout_s=300), "the fleet did not come online"
        before = await w.view()
        assert (before["devices"], before["online"], before["live"]) == (DEVICES, DEVICES, DEVICES)
        assert before["by_bundle"] == {bundle_id(BASE, "esp32s3"): 120, bundle_id(BASE, "stm32l4"): 80}
        await w.procs.record(True)
        rids = []
        for hw in w.hws:
            await w.release(GOOD, hw)
            rids.append(await w.rollout(GOOD, hw, STAGES, stratify_by=["temperature"]))
        final = await w.wait_rollouts(rids, timeout_s=600)
        assert [final[r]["rollout"]["state"] for r in rids] == ["completed", "completed"], final
        assert sum(final[r]["counts"]["succeeded"] for r in rids) == DEVICES

        after = await w.view()
        assert after["errors"] == [] and after["by_state"] == {"IDLE": DEVICES}
        assert after["by_bundle"] == {bundle_id(GOOD, "esp32s3"): 120, bundle_id(GOOD, "stm32l4"): 80}
        assert after["interpreters"] == 2  # one TFLM interpreter per worker for the one model they all run
        assert after["simulated_s"] > before["simulated_s"]
        counted = sum(n for _size, _qos, n in after["sizes"])  # recorded from the rollout on, in both workers
        assert 0 < counted <= after["sent"] + after["received"] - before["sent"] - before["received"]
        views = {v["id"]: v for v in await w.api.devices()}  # type: ignore[union-attr]
        assert Counter(v["running_bundle"] for v in views.values()) == Counter(after["by_bundle"])
        assert all(v["online"] and v["state"] == "IDLE" for v in views.values())
    finally:
        await w.stop()
    last = w.procs.last
    assert last is not None and last["devices"] == DEVICES  # each worker's devices said goodbye, then it exited
