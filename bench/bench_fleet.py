"""fleet-sim at scale: the largest fleet this machine takes through a complete staged rollout.

For each fleet size: a fleet-server process (its embedded Mosquitto, SQLite), N simulated devices (the real
agent core, one paho MQTT client each) provisioned through the API, then vibration-1.1.0 rolled out per
hardware class in stages 10 % -> 50 % -> 100 % to completion. The devices run in --workers processes (one
asyncio loop each, src/tinyfleet/simulator/procfleet.py; 0: all in this process), simulated time paced so the
fleet sends at most TELEMETRY_BUDGET_PER_S telemetry messages a wall second. Reported: devices, wall time
of the rollout, RSS per device (the RSS of the whole simulating process tree, this process and every worker,
after the rollout, less this process's RSS before the fleet existed, divided by N: the workers' interpreters
count against the devices; each size runs in a fresh process), and MQTT messages per second through the
broker (every message a device sent or received during the rollout, over its wall time); the server's own
cost: CPU seconds of the fleet-server process (and, apart, of its Mosquitto) during the rollout per 1,000
device updates that succeeded, read from /proc. A size whose connections the broker cannot hold open (its open-file
limit, which this process cannot raise past the hard limit) is an error row, not a run.
With --cluster-nodes K the broker is instead the clustered one (server/broker/loopback_cluster.py: Redis and K
nodes on loopback ports; the server in cluster mode on a fresh PostgreSQL schema, bench/pg_schema.py), the
devices spread over the nodes (shards.broker_node); the broker's cost is then that of every node and Redis
together. One broker process holds at most its open-file limit in connections (20,000 here): sizes past it
need a cluster.
Baseline, same run: the same messages (the same count of each payload size and QoS) published by one bare
paho client to one bare paho subscriber, through a Mosquitto started with the project's own generated
configuration (EmbeddedBroker) or, on a cluster, through one of its nodes, timed from the first publish to the
last delivery.
Run: .venv/bin/python bench/bench_fleet.py [--sizes 1000,10000 (the default, make bench)] [--workers 2]
[--cluster-nodes 0] [--merge] (--merge keeps the other sizes already in bench/results/fleet.json, each with the
date it was measured.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt  # noqa: E402
import redis  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from bench.common import RESULTS, write_result  # noqa: E402
from bench.pg_schema import PgSchema  # noqa: E402
from tinyfleet.protocol import topics  # noqa: E402
from tinyfleet.server.broker.cluster_identities import device_key, server_key  # noqa: E402
from tinyfleet.server.broker.loopback_cluster import LoopbackCluster  # noqa: E402
from tinyfleet.server.broker.passwords import hash_password  # noqa: E402
from tinyfleet.server.workers.broker_process import EmbeddedBroker  # noqa: E402
from tinyfleet.simulator import shards  # noqa: E402
from tinyfleet.simulator.chaos.scenarios import GOOD, STAGES  # noqa: E402
from tinyfleet.simulator.fleet import FleetSpec  # noqa: E402
from tinyfleet.simulator.limits import raise_open_files  # noqa: E402
from tinyfleet.simulator.releases import bundle_id  # noqa: E402
from tinyfleet.simulator.world import BASE, World  # noqa: E402

# The fleet's telemetry is held at this many messages per wall second by pacing simulated time (shards.py): the
# server here ingested about 150 messages/s on a loaded machine, and what it cannot take the broker queues, then drops.
TELEMETRY_BUDGET_PER_S = 100
BROKER_SPARE_FDS = 64  # a broker's own files: listener, log, persistence, the server's connections, Redis
WORKER_SPARE_FDS = 1024  # a worker's own files besides its devices' sockets (worker.py raises its limit so far)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of process `pid` so far, from /proc (0 if it is gone)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


Cluster = tuple[LoopbackCluster, PgSchema]  # a clustered broker and the PostgreSQL schema its server uses


async def fleet_rollout(n: int, workers: int, workdir: Path,
                        cluster: Cluster | None) -> tuple[dict, Counter[tuple[int, int]]]:  # fmt: skip
    step_s = shards.paced_wall_step_s(n, TELEMETRY_BUDGET_PER_S)
    if cluster is None:
        world = World(workdir, FleetSpec(n, seed=1), workers=workers, wall_step_s=step_s)
    else:
        nodes, pg = cluster
        world = World(workdir, FleetSpec(n, seed=1), workers=workers, wall_step_s=step_s, db_url=pg.url,
                      broker_nodes=nodes.nodes)  # fmt: skip
        world.server.env.update(nodes.server_settings())
    try:
        await asyncio.to_thread(world.server.start)
        from tinyfleet.simulator import releases

        for hw in ("esp32s3", "stm32l4"):  # model gate + TFLM interpreter loaded before the baseline RSS
            releases.gate_report(hw)
        rss0 = rss_bytes()
        t0 = time.monotonic()
        world.server.stop()
        await world.start()
        ok = await world.settle({bundle_id(BASE, hw) for hw in world.hws}, timeout_s=max(900, n * 0.04))
        t_online = time.monotonic() - t0
        if not ok:
            raise RuntimeError(f"{n} devices did not come online within {max(900, n * 0.04):.0f} s")
        await record(world, True)
        v0 = await world.view()
        server_pid = world.server.pid
        broker_pids = cluster[0].pids if cluster is not None else [world.server.broker_pid()]  # nodes and Redis
        cpu0 = cpu_s(server_pid), sum(cpu_s(p) for p in broker_pids)
        t1 = time.monotonic()
        rids = []
        for hw in world.hws:
            await world.release(GOOD, hw)
            rids.append(await world.rollout(GOOD, hw, STAGES, stratify_by=["temperature"]))
        # 0.12 s a device: the 50,000-device run on the cluster moved about 20 devices a second at best
        final = await world.wait_rollouts(rids, timeout_s=max(1800, n * 0.12))
        wall = time.monotonic() - t1
        cpu1 = cpu_s(server_pid), sum(cpu_s(p) for p in broker_pids)
        v1 = await world.view()
        await record(world, False)
        states = [final[r]["rollout"]["state"] for r in rids]
        succeeded = sum(final[r]["counts"]["succeeded"] for r in rids)
        msgs = v1["sent"] - v0["sent"] + v1["received"] - v0["received"]
        # The whole simulating process tree: this process and, with workers, every worker process.
        tree1 = rss_bytes() + (v1["rss_bytes"] if workers else 0)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 + (v1["peak_rss_bytes"] if workers else 0)
        result = {
            "devices": n,
            "worker_processes": workers,
            "broker": "mosquitto" if cluster is None else f"cluster: {len(cluster[0].nodes)} nodes and Redis",
            "rollout_states": states,
            "succeeded": succeeded,
            "provision_and_online_s": round(t_online, 1),
            "rollout_wall_s": round(wall, 1),
            "rss_per_device_kib": round((tree1 - rss0) / n / 1024, 1),
            "rss_total_mib": round(tree1 / 2**20, 1),
            "peak_rss_total_mib": round(peak / 2**20, 1),
            "messages": msgs,
            "messages_per_s": round(msgs / wall, 1),
            "server_cpu_s": round(cpu1[0] - cpu0[0], 1),
            "server_cpu_s_per_1000_updates": round((cpu1[0] - cpu0[0]) / max(succeeded, 1) * 1000, 2),
            "broker_cpu_s": round(cpu1[1] - cpu0[1], 1),
            "broker_cpu_s_per_1000_updates": round((cpu1[1] - cpu0[1]) / max(succeeded, 1) * 1000, 2),
            "simulated_s": v1["simulated_s"],
            "wall_s_per_simulated_s": step_s,
            "interpreters": v1["interpreters"],
            "load_avg_1m": round(os.getloadavg()[0], 2),
        }
        return result, shards.sizes_from_json(v1["sizes"])
    finally:
        await world.stop()


async def record(world: World, on: bool) -> None:
    """Count the sizes of the messages devices send and receive (the baseline replays them)."""
    if world.procs is not None:
        await world.procs.record(on)
    else:
        world.fleet.stats.sizes = Counter() if on else None


def bare_paho(sizes: Counter[tuple[int, int]], workdir: Path, cluster: LoopbackCluster | None = None) -> dict:
    """The same messages (payload sizes, QoS) from one bare paho client (a device's credentials, its own
    telemetry topic) to one bare subscriber (the server's credentials), through a fresh Mosquitto or through
    the first node of `cluster`."""
    # Either broker binds client id to username: two users.
    if cluster is None:
        broker = EmbeddedBroker(workdir / "baseline-broker", server_user="bench", server_password="bench-pw")
        broker.start({"benchpub": hash_password("pub-pw")})
        port, proto, stop = broker.port, mqtt.MQTTv5, broker.stop
    else:
        r = redis.Redis.from_url(cluster.redis_url)
        r.set(server_key("bench"), hash_password("bench-pw"))
        r.set(device_key("benchpub"), hash_password("pub-pw"))
        port, proto, stop = cluster.ports[0], mqtt.MQTTv311, r.close
    done = threading.Event()
    got = [0]
    last = [0.0]
    want = sum(sizes.values())

    def on_message(_c: object, _u: object, _m: object) -> None:
        got[0] += 1
        last[0] = time.monotonic()
        if got[0] >= want:
            done.set()

    subscribed = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench", protocol=proto)
    sub.username_pw_set("bench", "bench-pw")
    sub.on_message = on_message
    sub.on_subscribe = lambda *_a: subscribed.set()
    sub.on_connect = lambda c, *_a: c.subscribe(topics.telemetry("benchpub"), qos=1)
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="benchpub", protocol=proto)
    pub.username_pw_set("benchpub", "pub-pw")
    pub.max_queued_messages_set(0)
    pub.max_inflight_messages_set(100)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    try:
        if not subscribed.wait(10):
            raise RuntimeError("baseline subscriber did not subscribe")
        t0 = time.monotonic()
        for (size, qos), count in sizes.items():
            payload = bytes(size)
            for _ in range(count):
                pub.publish(topics.telemetry("benchpub"), payload, qos=qos)
        # The broker's queue per subscriber is bounded (max_queued_messages): beyond it, it drops. Stop when all
        # arrived or nothing arrived for 5 s, and report what was delivered over the time it took.
        seen = -1
        while not done.wait(5) and got[0] != seen:
            seen = got[0]
        wall = (last[0] or time.monotonic()) - t0
    finally:
        for c in (pub, sub):
            c.disconnect()
            c.loop_stop()
        stop()
    return {"messages": want, "delivered": got[0], "wall_s": round(wall, 2), "messages_per_s": round(got[0] / wall, 1)}


def open_files_error(n: int, workers: int, nodes: int, limit: int) -> str | None:
    """Why this machine's open-file limit cannot hold `n` connections so spread (None: it can)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    why = (f"RLIMIT_NOFILE's hard limit here is {hard}, and raising it needs CAP_SYS_RESOURCE, which this machine's "
           "processes lack")  # fmt: skip
    per_broker = math.ceil(n / max(nodes, 1))
    if limit < per_broker + BROKER_SPARE_FDS:
        what = "the broker" if nodes == 0 else f"each of {nodes} broker nodes"
        return (f"{what} needs an open file per device connection ({per_broker}) and can open {limit}: {why}; "
                "spread the fleet over more nodes (--cluster-nodes)")
    per_sim = math.ceil(n / max(workers, 1))
    if limit < per_sim + WORKER_SPARE_FDS:
        return (f"each simulating process needs an open file per device connection ({per_sim}) and can open "
                f"{limit}: {why}; use more worker processes (--workers)")
    return None


def one_size(n: int, workers: int, nodes: int = 0) -> dict:
    """One fleet size, in this (fresh) process: RSS growth is then the fleet's alone."""
    limit = raise_open_files(2 * n + 4096)  # the devices' sockets, and the brokers' (they inherit the limit)
    if (error := open_files_error(n, workers, nodes, limit)) is not None:
        return {"devices": n, "error": error}
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp, contextlib.ExitStack() as stack:
        cluster = None
        if nodes:
            cluster = (stack.enter_context(LoopbackCluster(Path(tmp) / "cluster", nodes)),
                       stack.enter_context(PgSchema()))  # fmt: skip
        try:
            fleet, sizes = asyncio.run(fleet_rollout(n, workers, Path(tmp) / "world", cluster))
        except RuntimeError as e:
            return {"devices": n, "error": str(e)}
        base = bare_paho(sizes, Path(tmp), cluster[0] if cluster is not None else None)
    fleet["bare_paho"] = base
    fleet["fleet_vs_bare_msgs_per_s"] = round(fleet["messages_per_s"] / base["messages_per_s"], 3)
    return fleet


def earlier_rows(exclude: set[int]) -> list[dict]:
    """The runs already in bench/results/fleet.json for other sizes, each dated (the file's date if unset)."""
    path = RESULTS / "fleet.json"
    if not path.exists():
        return []
    old = json.loads(path.read_text())
    return [{"measured_at": old.get("measured_at"), **r} for r in old.get("runs", []) if r["devices"] not in exclude]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000", help="comma-separated fleet sizes, smallest first")
    ap.add_argument("--merge", action="store_true", help="keep the other sizes of the existing results file")
    ap.add_argument("--workers", type=int, default=2, help="worker processes running the devices (0: in this one)")
    ap.add_argument("--cluster-nodes", type=int, default=0,
                    help="run the broker as a cluster of this many nodes and Redis (0: the embedded Mosquitto)")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: run one size, print its JSON
    args = ap.parse_args()
    if args.workers < 0 or args.cluster_nodes < 0:
        ap.error("--workers and --cluster-nodes must be 0 or more")
    try:
        sizes = [int(x) for x in args.sizes.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        ap.error(f"--sizes {args.sizes!r}: expected fleet sizes of 1 or more, comma-separated, e.g. 1000,10000")
    if args.one:
        print(json.dumps(one_size(args.one, args.workers, args.cluster_nodes)))
        return
    rows = []
    for n in sizes:
        cmd = [sys.executable, __file__, "--one", str(n), "--workers", str(args.workers), "--cluster-nodes",
               str(args.cluster_nodes)]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0 or not out.stdout.strip():
            rows.append({"devices": n, "error": (out.stderr.strip().splitlines() or ["no output"])[-1]})
            print(f"{n} devices: {rows[-1]['error']}")
            break
        fleet = json.loads(out.stdout.strip().splitlines()[-1])
        fleet["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        rows.append(fleet)
        if "error" in fleet:
            print(f"{n} devices: {fleet['error']}")
            break
        base = fleet["bare_paho"]
        print(f"{n} devices: rollout {fleet['rollout_states']} in {fleet['rollout_wall_s']} s, "
              f"{fleet['rss_per_device_kib']} KiB/device, {fleet['messages_per_s']} msgs/s "
              f"(bare paho {base['messages_per_s']} msgs/s: ratio {fleet['fleet_vs_bare_msgs_per_s']}), "
              f"server {fleet['server_cpu_s_per_1000_updates']} CPU s per 1,000 updates")  # fmt: skip
    if args.merge:
        rows = sorted(earlier_rows(exclude={r["devices"] for r in rows}) + rows, key=lambda r: r["devices"])
    complete = [r for r in rows if "error" not in r and all(s == "completed" for s in r["rollout_states"])]
    largest = max((r["devices"] for r in complete), default=0)
    path = write_result("fleet", {"largest_fleet_through_complete_rollout": largest, "runs": rows})
    print(f"largest fleet through a complete rollout: {largest} devices -> {path}")


if __name__ == "__main__":
    main()
