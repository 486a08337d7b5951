"""fleet-sim on the clustered broker: a fleet in two worker processes spreads its devices over both nodes (read
from the kernel's socket table, not from the simulator) and takes a two-hardware-class staged rollout to
completion through them, against a fleet-server in cluster mode on PostgreSQL; `fleet-sim run --broker-node`
joins such a server the same way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tinyfleet.simulator.chaos.scenarios import GOOD, STAGES
from tinyfleet.simulator.fleet import FleetSpec
from tinyfleet.simulator.releases import bundle_id
from tinyfleet.simulator.server_proc import ADMIN_TOKEN, ServerProcess
from tinyfleet.simulator.world import BASE, World

from ...simulator.sim_factory import factory_args
from .conftest import Cluster

DEVICES = 40
FLEET_SIM = str(Path(sys.executable).with_name("fleet-sim"))
ESTABLISHED = "01"


def socket_inodes(pids: list[int]) -> set[int]:
    out = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd)
            if target.startswith("socket:["):
                out.add(int(target[8:-1]))
    return out


def connections_to(port: int, pids: list[int]) -> int:
    """TCP connections that processes `pids` hold established to `port` on this host."""
    mine = socket_inodes(pids)
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        remote, state, inode = f[2], f[3], int(f[9])
        if state == ESTABLISHED and int(remote.rsplit(":", 1)[1], 16) == port and inode in mine:
            count += 1
    return count


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_process_fleet_spreads_over_the_nodes_and_completes_a_rollout(cluster: Cluster, db_url: str,
                                                                              tmp_path: Path) -> None:  # fmt: skip
    w = World(tmp_path / "world", FleetSpec(DEVICES, seed=7), workers=2, db_url=db_url, broker_nodes=cluster.nodes)
    w.server.env.update(cluster.loopback.server_settings())
    try:
        await w.start()
        assert await w.settle({bundle_id(BASE, hw) for hw in w.hws}, timeout_s=180), "the fleet did not come online"
        assert w.procs is not None
        assert [connections_to(port, w.procs.pids) for _host, port in cluster.nodes] == [DEVICES // 2] * 2
        rids = []
        for hw in w.hws:
            await w.release(GOOD, hw)
            rids.append(await w.rollout(GOOD, hw, STAGES, stratify_by=["temperature"]))
        final = await w.wait_rollouts(rids, timeout_s=300)
        assert [final[r]["rollout"]["state"] for r in rids] == ["completed", "completed"], final
        assert sum(final[r]["counts"]["succeeded"] for r in rids) == DEVICES
        view = await w.view()
        assert view["errors"] == [] and view["by_state"] == {"IDLE": DEVICES}
        assert view["by_bundle"] == {bundle_id(GOOD, "esp32s3"): 24, bundle_id(GOOD, "stm32l4"): 16}
        assert view["connect_failures"] == 0
    finally:
        await w.stop()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_fleet_sim_run_joins_a_cluster_server_through_its_nodes(cluster: Cluster, db_url: str, tmp_path: Path) -> None:
    _key, pub, factory = factory_args(tmp_path)
    server = ServerProcess(tmp_path / "server", pub, db_url=db_url)
    server.env.update(cluster.loopback.server_settings())
    server.start()
    try:
        nodes = [arg for host, port in cluster.nodes for arg in ("--broker-node", f"{host}:{port}")]
        out = subprocess.run(
            [FLEET_SIM, "run", "--devices", "4", "--workers", "2", "--api", server.url, "--token", ADMIN_TOKEN,
             "--trust", str(pub), *factory, *nodes, "--duration", "10", "--prefix", "cl"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout.strip().splitlines()[-1])
        assert result["online"] == 4 and result["by_state"] == {"IDLE": 4}, result
        views = httpx.get(server.url + "/api/v1/devices", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()
        assert sorted(v["id"] for v in views) == [f"cl-{i:05d}" for i in range(4)]
        assert all(v["running_bundle"].startswith("vibration-1.0.0") for v in views)  # their reports came through
    finally:
        server.stop()
