"""A fleet over worker processes, the pure parts: who runs which device, where it connects from, one merged view."""

from __future__ import annotations

from collections import Counter

import pytest

from tinyfleet.simulator import shards
from tinyfleet.simulator.device import DeviceConfig
from tinyfleet.simulator.fleet import FleetSpec, plan_devices
from tinyfleet.simulator.world import presence_timeout_s


def view(**kw: object) -> dict:
    base = {"devices": 0, "online": 0, "live": 0, "by_bundle": {}, "by_state": {}, "simulated_s": 0.0, "sent": 0,
            "received": 0, "connects": 0, "connect_failures": 0, "sizes": [], "interpreters": 0, "errors": [],
            "rss_bytes": 0, "peak_rss_bytes": 0}  # fmt: skip
    return {**base, **kw}


def test_shards_cover_the_fleet_once_each_with_the_same_mix() -> None:
    plans = plan_devices(FleetSpec(101, seed=3))
    parts = [shards.shard(plans, i, 3) for i in range(3)]
    assert sorted(p.index for part in parts for p in part) == list(range(101))
    assert [len(p) for p in parts] == [34, 34, 33]
    for part in parts:  # each worker gets about the fleet's 60/40 hardware mix
        share = sum(p.hw == "esp32s3" for p in part) / len(part)
        assert 0.55 <= share <= 0.65
    assert shards.shard(plans, 0, 1) == plans


@pytest.mark.parametrize(("index", "count"), [(-1, 2), (2, 2), (0, 0)])
def test_a_worker_outside_the_fleet_is_refused(index: int, count: int) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        shards.shard([1, 2, 3], index, count)


def test_devices_of_a_loopback_broker_spread_over_source_addresses() -> None:
    addrs = [shards.source_address("127.0.0.1", i) for i in range(64)]
    assert addrs[0] == "127.0.0.1" and addrs[15] == "127.0.0.16" and addrs[16] == "127.0.0.1"
    assert Counter(addrs) == dict.fromkeys((f"127.0.0.{k}" for k in range(1, 17)), 4)
    assert shards.source_address("localhost", 5) == "127.0.0.6"
    assert shards.source_address("broker.example.net", 5) is None  # elsewhere the system picks
    assert shards.source_address("10.0.0.7", 5) is None


def test_devices_spread_evenly_over_cluster_nodes_and_so_do_their_fallbacks() -> None:
    nodes = [("10.0.0.1", 1883), ("10.0.0.2", 1883), ("10.0.0.3", 1883)]
    placed = [shards.broker_node(nodes, i) for i in range(600)]
    assert Counter(home for home, _ in placed) == dict.fromkeys(nodes, 200)
    for home, more in placed:  # every other node once, never its home
        assert sorted(more) == sorted(n for n in nodes if n != home)
    for lost in nodes:  # the devices of a lost node split evenly over the other two
        assert Counter(more[0] for home, more in placed if home == lost) == dict.fromkeys(
            (n for n in nodes if n != lost), 100)
    assert shards.broker_node(nodes[:1], 7) == (nodes[0], ())
    assert shards.broker_node(nodes[:2], 3) == (nodes[1], (nodes[0],))
    with pytest.raises(ValueError, match="at least one node"):
        shards.broker_node([], 0)


def test_a_paced_fleets_server_waits_ten_telemetry_periods_before_showing_a_device_offline() -> None:
    cfg = DeviceConfig()  # a telemetry window every 30 simulated seconds
    assert presence_timeout_s(cfg, 0.05) == 300.0  # unpaced: the server's default
    assert presence_timeout_s(cfg, shards.paced_wall_step_s(50_000, 100)) == pytest.approx(5000.0)
    assert presence_timeout_s(DeviceConfig(telemetry_period_s=60), 2.0) == 1200.0


def test_merge_adds_counts_and_takes_the_least_simulated_time() -> None:
    a = view(devices=3, online=2, live=3, by_bundle={"v1": 2, "v2": 1}, by_state={"IDLE": 3}, simulated_s=41.0,
             sent=10, received=7, connects=3, sizes=[[120, 1, 4], [40, 0, 2]], interpreters=1,
             errors=["sim-00000: boom"], rss_bytes=100, peak_rss_bytes=150)  # fmt: skip
    b = view(devices=2, online=2, live=1, by_bundle={"v2": 1, "-": 1}, by_state={"IDLE": 1, "BRICKED": 1},
             simulated_s=39.0, sent=5, received=1, connects=2, connect_failures=1, sizes=[[120, 1, 1]],
             interpreters=1, rss_bytes=50, peak_rss_bytes=60)  # fmt: skip
    m = shards.merge([a, b])
    assert (m["devices"], m["online"], m["live"], m["sent"], m["received"]) == (5, 4, 4, 15, 8)
    assert (m["connects"], m["connect_failures"], m["interpreters"]) == (5, 1, 2)
    assert m["by_bundle"] == {"-": 1, "v1": 2, "v2": 2} and m["by_state"] == {"BRICKED": 1, "IDLE": 4}
    assert m["simulated_s"] == 39.0  # every device has lived at least this long
    assert shards.sizes_from_json(m["sizes"]) == Counter({(120, 1): 5, (40, 0): 2})
    assert m["errors"] == ["sim-00000: boom"]
    assert (m["rss_bytes"], m["peak_rss_bytes"]) == (150, 210)
    assert shards.merge([a]) == {**a, "sizes": [[40, 0, 2], [120, 1, 4]]}  # one worker: its own view
    with pytest.raises(ValueError, match="no worker views"):
        shards.merge([])


def test_message_sizes_survive_json() -> None:
    sizes = Counter({(4864, 1): 3, (12, 0): 9})
    assert shards.sizes_from_json(shards.sizes_to_json(sizes)) == sizes


def test_pacing_holds_a_fleets_telemetry_to_the_budget() -> None:
    assert shards.paced_wall_step_s(1000, 100) == pytest.approx(1000 / 30 / 100)  # 1,000 devices: 0.33 s a step
    assert shards.paced_wall_step_s(50_000, 100) == pytest.approx(50_000 / 30 / 100)
    assert shards.paced_wall_step_s(20, 100) == 0.05  # a small fleet runs at the one-process pace
    step = shards.paced_wall_step_s(10_000, 250, step_ms=500, telemetry_period_s=60)
    assert 10_000 * (0.5 / 60) / step == pytest.approx(250)  # telemetry per wall second = the budget
    for bad in ((0, 100), (10, 0)):
        with pytest.raises(ValueError, match="pacing"):
            shards.paced_wall_step_s(*bad)
