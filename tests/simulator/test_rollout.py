"""20 simulated devices (real agent core, own MQTT connections) complete a staged rollout of the sample bundle."""

from __future__ import annotations

from tinyfleet.bundles.components import ComponentType
from tinyfleet.bundles.format import parse_bundle
from tinyfleet.protocol import records
from tinyfleet.simulator import releases
from tinyfleet.simulator.releases import Release, bundle_id
from tinyfleet.simulator.world import BASE, World

V2 = Release("vibration-1.1.0", counter=2, firmware_version="2.4.0")


async def test_twenty_devices_complete_a_staged_rollout(world20: World) -> None:
    w = world20
    assert w.hws == ["esp32s3", "stm32l4"]
    per_hw = {hw: [d for d in w.fleet.devices if d.hw == hw] for hw in w.hws}
    assert {hw: len(v) for hw, v in per_hw.items()} == {"esp32s3": 12, "stm32l4": 8}
    rids = {}
    for hw in w.hws:
        await w.release(V2, hw)
        stages = [{"percent": 10}, {"percent": 50}, {"percent": 100}]
        rids[hw] = await w.rollout(V2, hw, stages, stratify_by=["temperature"])
    final = await w.wait_rollouts(list(rids.values()), timeout_s=120)

    for hw, rid in rids.items():
        st = final[rid]
        assert st["rollout"]["state"] == "completed", st
        assert st["counts"]["succeeded"] == len(per_hw[hw]) and st["counts"]["failed"] == 0
        devs = await w.api.rollout_devices(rid)  # type: ignore[union-attr]
        canary = {d["stratum"] for d in devs if d["stage"] == 0}
        assert canary == {f"temperature={t}" for t in ("cold", "ambient", "hot")}  # every band in the canary

    for d in w.fleet.devices:
        new = w.bundles[bundle_id(V2, d.hw)]
        assert d.log.bricked is None
        assert d.state == "IDLE" and d.running_digest == releases.digest(new)
        assert d.platform.image is not None and d.platform.image.bundle_id == bundle_id(V2, d.hw)
        reasons = [r.reason_name for r in d.log.reports.values() if r.target_digest == releases.digest(new)]
        assert reasons[-2:] == ["Staged", "Confirmed"] or reasons[-1] == "Confirmed", reasons
        # Only the firmware changed: the model, thresholds, calibration and vectors were copied bank to bank.
        fw = parse_bundle(new).component(ComponentType.FIRMWARE)
        want = {f"fleet/blobs/{fw.sha256.hex()}/b/{n}" for n in range(records.block_count(fw.length))}
        assert d.log.block_topics == want
        view = await w.api.device(d.id)  # type: ignore[union-attr]
        assert (view["running_bundle"], view["state"], view["online"]) == (bundle_id(V2, d.hw), "IDLE", True)

    # One TFLM interpreter for the one model every device runs; each device ran its golden vectors on it.
    assert len(w.fleet.pool) == 1
    assert sum(d.platform.inferences for d in w.fleet.devices) >= 20 * 8
    assert BASE.counter < V2.counter
