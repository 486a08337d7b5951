"""fleet-sim at scale: the largest fleet this machine takes through a complete staged rollout.

For each fleet size: a fleet-server process (its embedded Mosquitto, SQLite), N simulated devices (the real
agent core, one paho MQTT client each, all on one asyncio loop) provisioned through the API, then
vibration-1.1.0 rolled out per hardware class in stages 10 % -> 50 % -> 100 % to completion. Reported:
devices, wall time of the rollout, RSS per device (process RSS growth from before the fleet existed to after
the rollout, divided by N; each size runs in a fresh process), and MQTT messages per second through the
broker (every message a device sent or received during the rollout, over its wall time).
Baseline, same run: the same number of messages with the same payload sizes and QoS, published by one bare
paho client to one bare paho subscriber through a Mosquitto started with the project's own generated
configuration (EmbeddedBroker), timed from the first publish to the last delivery.
Run: .venv/bin/python bench/bench_fleet.py [--sizes 1000,2000] [--merge]
(--merge keeps the other sizes already in bench/results/fleet.json, each with the date it was measured.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from bench.common import RESULTS, write_result  # noqa: E402
from tinyfleet.protocol import topics  # noqa: E402
from tinyfleet.server.broker.passwords import hash_password  # noqa: E402
from tinyfleet.server.workers.broker_process import EmbeddedBroker  # noqa: E402
from tinyfleet.simulator.chaos.scenarios import GOOD, STAGES  # noqa: E402
from tinyfleet.simulator.fleet import FleetSpec  # noqa: E402
from tinyfleet.simulator.releases import bundle_id  # noqa: E402
from tinyfleet.simulator.world import BASE, World  # noqa: E402


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


async def fleet_rollout(n: int, workdir: Path) -> tuple[dict, list[tuple[int, int]]]:
    world = World(workdir, FleetSpec(n, seed=1))
    try:
        await asyncio.to_thread(world.server.start)
        from tinyfleet.simulator import releases

        for hw in ("esp32s3", "stm32l4"):  # model gate + TFLM interpreter loaded before the baseline RSS
            releases.gate_report(hw)
        rss0 = rss_bytes()
        t0 = time.monotonic()
        world.server.stop()
        await world.start()
        ok = await world.settle({bundle_id(BASE, hw) for hw in world.hws}, timeout_s=900)
        t_online = time.monotonic() - t0
        if not ok:
            raise RuntimeError(f"{n} devices did not come online within 900 s")
        world.fleet.stats.record = []
        sent0, recv0 = world.fleet.stats.sent, world.fleet.stats.received
        t1 = time.monotonic()
        rids = []
        for hw in world.hws:
            await world.release(GOOD, hw)
            rids.append(await world.rollout(GOOD, hw, STAGES, stratify_by=["temperature"]))
        final = await world.wait_rollouts(rids, timeout_s=1800)
        wall = time.monotonic() - t1
        states = [final[r]["rollout"]["state"] for r in rids]
        succeeded = sum(final[r]["counts"]["succeeded"] for r in rids)
        msgs = world.fleet.stats.sent - sent0 + world.fleet.stats.received - recv0
        record, world.fleet.stats.record = world.fleet.stats.record, None
        rss1 = rss_bytes()
        result = {
            "devices": n,
            "rollout_states": states,
            "succeeded": succeeded,
            "provision_and_online_s": round(t_online, 1),
            "rollout_wall_s": round(wall, 1),
            "rss_per_device_kib": round((rss1 - rss0) / n / 1024, 1),
            "rss_total_mib": round(rss1 / 2**20, 1),
            "messages": msgs,
            "messages_per_s": round(msgs / wall, 1),
            "simulated_s": world.fleet.clock.seconds,
            "interpreters": len(world.fleet.pool),
        }
        return result, record
    finally:
        await world.stop()


def bare_paho(record: list[tuple[int, int]], workdir: Path) -> dict:
    """The same messages (payload sizes, QoS) from one bare paho client (a device's credentials, its own
    telemetry topic) to one bare subscriber (the server's credentials)."""
    broker = EmbeddedBroker(workdir / "baseline-broker", server_user="bench", server_password="bench-pw")
    broker.start({"benchpub": hash_password("pub-pw")})  # the broker binds client id to username: two users
    done = threading.Event()
    got = [0]
    last = [0.0]
    want = len(record)

    def on_message(_c: object, _u: object, _m: object) -> None:
        got[0] += 1
        last[0] = time.monotonic()
        if got[0] >= want:
            done.set()

    subscribed = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench", protocol=mqtt.MQTTv5)
    sub.username_pw_set("bench", "bench-pw")
    sub.on_message = on_message
    sub.on_subscribe = lambda *_a: subscribed.set()
    sub.on_connect = lambda c, *_a: c.subscribe(topics.telemetry("benchpub"), qos=1)
    sub.connect("127.0.0.1", broker.port)
    sub.loop_start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="benchpub", protocol=mqtt.MQTTv5)
    pub.username_pw_set("benchpub", "pub-pw")
    pub.max_queued_messages_set(0)
    pub.max_inflight_messages_set(100)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    try:
        if not subscribed.wait(10):
            raise RuntimeError("baseline subscriber did not subscribe")
        payloads = {size: bytes(size) for size in {s for s, _ in record}}
        t0 = time.monotonic()
        for size, qos in record:
            pub.publish(topics.telemetry("benchpub"), payloads[size], qos=qos)
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
        broker.stop()
    return {"messages": want, "delivered": got[0], "wall_s": round(wall, 2), "messages_per_s": round(got[0] / wall, 1)}


def one_size(n: int) -> dict:
    """One fleet size, in this (fresh) process: RSS growth is then the fleet's alone."""
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        try:
            fleet, record = asyncio.run(fleet_rollout(n, Path(tmp) / "world"))
        except RuntimeError as e:
            return {"devices": n, "error": str(e)}
        base = bare_paho(record, Path(tmp))
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
    ap.add_argument("--sizes", default="1000", help="comma-separated fleet sizes, smallest first")
    ap.add_argument("--merge", action="store_true", help="keep the other sizes of the existing results file")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: run one size, print its JSON
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one_size(args.one)))
        return
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        out = subprocess.run([sys.executable, __file__, "--one", str(n)], capture_output=True, text=True)
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
              f"(bare paho {base['messages_per_s']} msgs/s: ratio {fleet['fleet_vs_bare_msgs_per_s']})")  # fmt: skip
    if args.merge:
        rows = sorted(earlier_rows(exclude={r["devices"] for r in rows}) + rows, key=lambda r: r["devices"])
    complete = [r for r in rows if "error" not in r and all(s == "completed" for s in r["rollout_states"])]
    largest = max((r["devices"] for r in complete), default=0)
    path = write_result("fleet", {"largest_fleet_through_complete_rollout": largest, "runs": rows})
    print(f"largest fleet through a complete rollout: {largest} devices -> {path}")


if __name__ == "__main__":
    main()
