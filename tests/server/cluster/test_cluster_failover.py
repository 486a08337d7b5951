"""Past one machine: two fleet-server replicas on one PostgreSQL and a two-node clustered broker on one Redis,
each in a network namespace of its own, with simulated devices (real agent core, own MQTT connections) spread
over the nodes from a sixth namespace. Mid-rollout one broker node and one replica are killed (SIGKILL): the
rollout completes, every report a device had PUBACKed is stored once, and no device bricks."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tinyfleet.bundles.signing import generate_private_key, public_der, public_pem
from tinyfleet.server.broker.cluster_node import READY, NodeSetupError, node_command, redis_command
from tinyfleet.server.broker.loopback_cluster import wait_for_line
from tinyfleet.server.db.engine import normalize_url
from tinyfleet.simulator import releases
from tinyfleet.simulator.api import ApiError, FleetApi
from tinyfleet.simulator.device import DeviceConfig
from tinyfleet.simulator.fleet import Fleet, FleetSpec, plan_devices
from tinyfleet.simulator.releases import Release, bundle_id
from tinyfleet.simulator.world import BASE

from ..conftest import _PG_REASON, PG_URL
from .netns import NetnsUnavailable, Topology

DEVICES = 30
HW = "esp32s3"
SLOTS = 8
V2 = Release("vibration-1.1.0", counter=2, firmware_version="2.4.0")
TOKEN = "cluster-test-admin-token"
PG_SOCKET_DIR = "/var/run/postgresql"  # PostgreSQL is reached through its socket: no address outside the namespaces


@pytest.fixture
def schema() -> Iterator[str]:
    if _PG_REASON:
        pytest.skip(_PG_REASON)
    if not Path(PG_SOCKET_DIR, ".s.PGSQL.5432").exists():
        pytest.skip(f"no PostgreSQL socket in {PG_SOCKET_DIR}: the namespaces reach the database only through it")
    name = f"tfc_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalize_url(PG_URL))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    yield name
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
    admin.dispose()


@pytest.fixture
def topo() -> Iterator[Topology]:
    t = Topology(f"tfc{os.getpid()}-")
    try:
        t.create(["store", "b1", "b2", "s1", "s2", "dev"])
    except NetnsUnavailable as exc:
        pytest.skip(f"network namespaces cannot be made here: {exc}")
    try:
        yield t
    finally:
        t.close()


def _server_env(t: Topology, me: str, other: str, nodes: list[str], schema: str, data: Path,
                pub: Path) -> dict[str, str]:  # fmt: skip
    db = f"postgresql://postgres@/test?host={PG_SOCKET_DIR}&options=-csearch_path%3D{schema}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYFLEET_") and k != "DATABASE_URL"}
    env.update({
        "DATABASE_URL": db,
        "TINYFLEET_DATA_DIR": str(data),
        "TINYFLEET_API_HOST": t.hosts[me],
        "TINYFLEET_API_PORT": "8080",
        "TINYFLEET_BOOTSTRAP_ADMIN_TOKEN": TOKEN,
        "TINYFLEET_TRUSTED_KEY_FILES": json.dumps([str(pub)]),
        "TINYFLEET_ENGINE_INTERVAL_S": "0.2",
        "TINYFLEET_BROKER_MODE": "cluster",
        "TINYFLEET_BROKER_HOST": t.hosts["b1"],
        "TINYFLEET_BROKER_PORT": "1883",
        "TINYFLEET_BROKER_NODES": json.dumps(nodes),
        "TINYFLEET_CLUSTER_STORE_URL": f"redis://{t.hosts['store']}:6379/0",
        "TINYFLEET_BROKER_USERNAME": f"fleet-{me}",
        "TINYFLEET_BROKER_REPLICA_USERS": json.dumps([f"fleet-{other}"]),
        "TINYFLEET_INGEST_SLOTS": str(SLOTS),
    })  # fmt: skip
    return env


def _wait_healthy(t: Topology, host: str, proc: object, log: Path, timeout: float = 90.0) -> None:
    url = f"http://{t.hosts[host]}:8080/healthz"

    def poll() -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if proc.poll() is not None:  # type: ignore[attr-defined]
                return False
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        return False

    with t.enter("dev") as ex:
        ok = ex.submit(poll).result()
    assert ok, f"fleet-server in {host} did not become healthy: {log.read_text(errors='replace')[-3000:]}"


def _slot_holders(schema: str) -> int:
    """How many ingest slots are leased now (advisory locks in the fleet's schema)."""
    eng = create_engine(normalize_url(PG_URL) + ("&" if "?" in PG_URL else "?") + f"options=-csearch_path%3D{schema}")
    with eng.connect() as conn:
        n = conn.execute(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND granted AND "
            "classid::bigint = (hashtext('tinyfleet-ingest-slot:' || current_schema())::bigint & 4294967295)"
        )).scalar()  # fmt: skip
    eng.dispose()
    return int(n or 0)


def test_rollout_survives_a_broker_node_and_a_replica_killed_mid_rollout(schema: str, topo: Topology,
                                                                          tmp_path: Path) -> None:  # fmt: skip
    """(The namespaces, and with them the replicas, go before the schema does.)"""
    t = topo
    try:
        redis_cmd = redis_command(t.hosts["store"], 6379, tmp_path)
        node_cmds = {b: node_command(b, t.hosts[b], 1883, t.hosts["store"], 6379) for b in ("b1", "b2")}
    except NodeSetupError as exc:
        pytest.skip(str(exc))
    key = generate_private_key()
    pub = tmp_path / "signing.pub.pem"
    pub.write_bytes(public_pem(key.public_key()))

    log = tmp_path / "redis.log"
    wait_for_line(log, "Ready to accept connections", t.run("store", redis_cmd, log))
    brokers = {}
    for b, cmd in node_cmds.items():
        log = tmp_path / f"{b}.log"
        brokers[b] = t.run(b, cmd, log)
        wait_for_line(log, READY, brokers[b])
    nodes = [f"{t.hosts['b1']}:1883", f"{t.hosts['b2']}:1883"]
    exe = str(Path(sys.executable).with_name("fleet-server"))
    servers = {}
    for me, other, order in (("s1", "s2", nodes), ("s2", "s1", nodes[::-1])):  # their own links on different nodes
        log = tmp_path / f"{me}.log"
        env = _server_env(t, me, other, order, schema, tmp_path / me, pub)
        servers[me] = t.run(me, [exe, "serve", "--log-level", "info"], log, env)
        _wait_healthy(t, me, servers[me], log)

    urls = {s: f"http://{t.hosts[s]}:8080" for s in servers}

    async def scenario() -> dict[str, object]:
        api = FleetApi(urls["s1"], TOKEN)
        base = releases.build(BASE, HW, key)
        await api.upload_bundle(base)
        await api.publish_bundle(bundle_id(BASE, HW))
        plans = plan_devices(FleetSpec(DEVICES, seed=11, mix={HW: 1.0}))
        fleet = Fleet([public_der(key.public_key())], DeviceConfig())
        for p in plans:
            fleet.add(p)
        await fleet.provision(api, plans, {HW: base})
        b1, b2 = (t.hosts["b1"], 1883), (t.hosts["b2"], 1883)
        for i, d in enumerate(fleet.devices):  # half the fleet on each node, the other node as its fallback
            home, spare = (b1, b2) if i % 2 == 0 else (b2, b1)
            assert d.link is not None
            d.link.creds = replace(d.link.creds, host=home[0], port=home[1], protocol="3.1.1", more_nodes=(spare,))
        fleet.start()
        try:
            async def online() -> bool:
                views = await api.devices()
                return len(views) == DEVICES and all(v["online"] and v["running_bundle"] for v in views)

            assert await fleet.wait_for(online, 120), "the fleet did not come online on its factory bundle"
            await api.upload_bundle(releases.build(V2, HW, key))
            body = {"bundle_id": bundle_id(V2, HW), "target": {"hardware_class": HW},
                    "stages": [{"percent": 10}, {"percent": 50}, {"percent": 100}]}  # fmt: skip
            rid = int((await api.create_rollout(body))["rollout"]["id"])

            async def started() -> bool:
                st = await api.rollout(rid)
                return st["counts"]["succeeded"] >= 3

            assert await fleet.wait_for(started, 120), "the rollout's first stage did not succeed"
            before = await api.rollout(rid)
            t.kill(brokers["b1"])
            t.kill(servers["s1"])
            api2 = FleetApi(urls["s2"], TOKEN)
            last: dict[str, object] = {}

            async def finished() -> bool:
                try:
                    last.update(await api2.rollout(rid))
                except ApiError:
                    return False
                return last["rollout"]["state"] in ("completed", "halted", "aborted")  # type: ignore[index]

            await fleet.wait_for(finished, 240)
            stored: dict[str, list[dict[str, object]]] = {}
            views: dict[str, dict[str, object]] = {}

            async def caught_up() -> bool:
                """The server holds every report each device had PUBACKed (a rollout can complete on presence
                before the last reports are in: they may wait in a slot session being handed over)."""
                for d in fleet.devices:
                    stored[d.id] = await api2.device_reports(d.id)
                views.update({v["id"]: v for v in await api2.devices()})
                return all(d.log.acked_reports <= {(r["epoch"], r["seq"]) for r in stored[d.id]}
                           for d in fleet.devices)  # fmt: skip

            await fleet.wait_for(caught_up, 60)
            await api2.close()
            links = {d.id: (d.link.connected, d.link.address, d.link.dropped) for d in fleet.devices}
            return {"before": before, "final": last, "stored": stored, "views": views, "fleet": fleet, "links": links}
        finally:
            fleet.stop()
            await asyncio.sleep(0.2)
            await api.close()

    with t.enter("dev") as ex:
        out = ex.submit(asyncio.run, scenario()).result()

    before, final, fleet = out["before"], out["final"], out["fleet"]
    assert before["counts"]["succeeded"] < DEVICES, "the kill came after the rollout had finished"  # type: ignore[index]
    assert final["rollout"]["state"] == "completed", final  # type: ignore[index]
    assert final["counts"]["succeeded"] == DEVICES and final["counts"]["failed"] == 0, final  # type: ignore[index]
    survivor = (topo.hosts["b2"], 1883)
    for d in fleet.devices:  # type: ignore[attr-defined]
        assert d.log.bricked is None, (d.id, d.log.bricked)
        assert d.state == "IDLE" and d.platform.image.bundle_id == bundle_id(V2, HW), (d.id, d.state)
        view = out["views"][d.id]  # type: ignore[index]
        assert (view["running_bundle"], view["state"]) == (bundle_id(V2, HW), "IDLE")
        stored = [(r["epoch"], r["seq"]) for r in out["stored"][d.id]]  # type: ignore[index]
        assert len(stored) == len(set(stored)), f"{d.id}: a report stored twice"
        lost = d.log.acked_reports - set(stored)
        assert not lost, f"{d.id}: reports the broker PUBACKed but the server never stored: {sorted(lost)}"
        assert set(stored) <= set(d.log.reports), f"{d.id}: a stored report the device never sent"
        # every device is on the surviving node now: those connected to the killed node saw the connection drop,
        # those rebooting into the new bundle at that instant found it gone when they connected again
        connected, address, dropped = out["links"][d.id]  # type: ignore[index]
        assert connected and address == survivor, (d.id, connected, address, dropped)
    assert any(dropped for _c, _a, dropped in out["links"].values()), "no live connection to the killed node"  # type: ignore[attr-defined]
    assert _slot_holders(schema) == SLOTS  # the killed replica's slots were taken over
