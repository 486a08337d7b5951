"""The clustered broker against the embedded Mosquitto, in the same run: report throughput and cost per device.

Throughput: 20 device clients publish 500 QoS 1 state reports each (104 bytes, the TFSR size) as fast as paho
sends them, and one persistent server session (an ingest slot's, on the cluster) receives them; the time runs
from the first publish to the last delivery. Configurations: the embedded Mosquitto with its identity plugin
(the baseline), one cluster node (publishers and session on it), and two nodes (publishers on one, the session
on the other, every message crossing Redis).

Cost per device: N device clients (MQTT 3.1.1 CONNECT over raw sockets, each with its presence will) stay
connected to one broker; the broker process's RSS grows by so much per connection, and on the cluster Redis
grows by each identity, will and retained desired state.

.venv/bin/python bench/bench_cluster.py [--connections 1000]
Results: bench/results/cluster.json
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import redis
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import write_result  # noqa: E402
from tinyfleet.protocol import partitions, topics  # noqa: E402
from tinyfleet.server.broker.cluster_identities import ClusterCredentialSink, device_key, server_key  # noqa: E402
from tinyfleet.server.broker.loopback_cluster import LoopbackCluster  # noqa: E402
from tinyfleet.server.broker.passwords import hash_password  # noqa: E402
from tinyfleet.server.services.credential_sync import ShardLocks  # noqa: E402
from tinyfleet.server.workers.broker_process import EmbeddedBroker  # noqa: E402

SERVER, SERVER_PW, DEV_PW = "fleet-server", "bench-server", "bench-device"
CHANGES = 2000  # identity rotations through the cluster's store, each confirmed (SET, kick, read back)
PUBLISHERS, PER_PUBLISHER, REPORT, WINDOW = 20, 500, bytes(104), bytes(168)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def throughput(pub_port: int, sub_port: int, v5_sub: bool, sub_id: str, qos: int = 1) -> dict[str, float]:
    """QoS 1: state reports (every one must arrive). QoS 0: telemetry windows (TFTM with one channel), counted
    as they arrive until none came for 2 s."""
    total = PUBLISHERS * PER_PUBLISHER
    got = threading.Event()
    count = [0]
    last = [0.0]

    def on_message(*_a: object) -> None:
        count[0] += 1
        last[0] = time.perf_counter()
        if count[0] == total:
            got.set()

    proto = mqtt.MQTTv5 if v5_sub else mqtt.MQTTv311
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=sub_id, protocol=proto,
                      **({} if v5_sub else {"clean_session": False}))  # fmt: skip
    sub.username_pw_set(SERVER, SERVER_PW)
    sub.on_message = on_message
    sub.max_inflight_messages_set(1000)
    subscribed = threading.Event()
    sub.on_subscribe = lambda *_a: subscribed.set()
    sub.connect("127.0.0.1", sub_port)
    sub.loop_start()
    sub.subscribe(topics.STATE_ALL if qos else topics.TELEMETRY_ALL, qos=1)
    assert subscribed.wait(10)
    pubs = []
    for i in range(PUBLISHERS):
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"d{i:05d}", protocol=mqtt.MQTTv311)
        c.username_pw_set(f"d{i:05d}", DEV_PW)
        c.max_inflight_messages_set(20)
        c.connect("127.0.0.1", pub_port)
        c.loop_start()
        pubs.append(c)
    time.sleep(1.0)
    t0 = time.perf_counter()
    topic, payload = (topics.state, REPORT) if qos else (topics.telemetry, WINDOW)
    infos = [c.publish(topic(f"d{i:05d}"), payload, qos=qos) for _ in range(PER_PUBLISHER)
             for i, c in enumerate(pubs)]  # fmt: skip
    for info in infos:
        info.wait_for_publish(120)
    if qos:
        ok = got.wait(120)
    else:  # QoS 0 may be dropped under load: wait until all arrived or nothing came for 2 s
        seen = -1
        while not got.wait(2) and count[0] != seen:
            seen = count[0]
        ok = count[0] > 0
    for c in [*pubs, sub]:
        c.disconnect()
        c.loop_stop()
    if not ok:
        raise RuntimeError(f"only {count[0]} of {total} reports arrived")
    seconds = last[0] - t0
    return {"messages": total, "delivered": count[0], "seconds": round(seconds, 3),
            "messages_per_s": round(count[0] / seconds, 1)}  # fmt: skip


def _connect_packet(client_id: str, password: str) -> bytes:
    def s(x: str | bytes) -> bytes:
        b = x.encode() if isinstance(x, str) else x
        return struct.pack(">H", len(b)) + b

    will_topic, will = topics.presence(client_id), bytes(96)
    flags = 0x80 | 0x40 | 0x20 | 0x08 | 0x04 | 0x02  # user, password, will retain, will QoS 1, will, clean
    body = s("MQTT") + bytes([4, flags]) + struct.pack(">H", 600) + s(client_id) + s(will_topic) + s(will)
    body += s(client_id) + s(password)
    n, rem = len(body), b""
    while True:
        byte, n = n % 128, n // 128
        rem += bytes([byte | (0x80 if n else 0)])
        if not n:
            break
    return b"\x10" + rem + body


def idle_connections(port: int, n: int) -> list[socket.socket]:
    socks = []
    for i in range(n):
        sk = socket.create_connection(("127.0.0.1", port))
        sk.sendall(_connect_packet(f"c{i:06d}", DEV_PW))
        socks.append(sk)
    for sk in socks:
        sk.settimeout(30)
        ack = sk.recv(4)
        if len(ack) != 4 or ack[0] != 0x20 or ack[3] != 0:
            raise RuntimeError(f"CONNACK refused: {ack.hex()}")
    return socks


def run_mosquitto(work: Path, n: int) -> dict[str, object]:
    me = pwd.getpwuid(os.getuid()).pw_name
    broker = EmbeddedBroker(work / "mosquitto", server_user=SERVER, server_password=SERVER_PW, run_as=me)
    h = hash_password(DEV_PW)
    broker.start({**{f"d{i:05d}": h for i in range(PUBLISHERS)}, **{f"c{i:06d}": h for i in range(n)}})
    try:
        pid = broker._pid()
        assert pid is not None
        before = rss_kib(pid)  # on the fresh broker: memory freed after the throughput runs would hide growth
        socks = idle_connections(broker.port, n)
        time.sleep(1)
        grown = rss_kib(pid) - before
        for sk in socks:
            sk.close()
        tp = throughput(broker.port, broker.port, True, SERVER)
        tm = throughput(broker.port, broker.port, True, SERVER, qos=0)
        return {"throughput": tp, "telemetry": tm, "connections": n, "rss_kib_per_connection": round(grown / n, 2)}
    finally:
        broker.stop()


def run_cluster(work: Path, n: int) -> dict[str, object]:
    with LoopbackCluster(work / "cluster", nodes=2) as cluster:
        r = redis.Redis.from_url(cluster.redis_url)
        ports = cluster.ports
        node_pid = cluster.pids[1]  # the first node's (Redis' comes first)
        h = hash_password(DEV_PW)
        r.set(server_key(SERVER), hash_password(SERVER_PW))
        r.mset({device_key(f"d{i:05d}"): h for i in range(PUBLISHERS)})
        one = throughput(ports[0], ports[0], False, partitions.slot_client_id(0))
        two = throughput(ports[0], ports[1], False, partitions.slot_client_id(1))
        tm = throughput(ports[0], ports[0], False, partitions.slot_client_id(2), qos=0)
        sink = ClusterCredentialSink(cluster.redis_url, [SERVER], ShardLocks())
        t0 = time.perf_counter()
        for k in range(CHANGES):
            sink.write(f"d{k % PUBLISHERS:05d}", h)
            sink.confirm(f"d{k % PUBLISHERS:05d}", True)
        changes_per_s = CHANGES / (time.perf_counter() - t0)
        sink.close()
        mem0 = int(r.info("memory")["used_memory"])
        r.mset({device_key(f"c{i:06d}"): h for i in range(n)})
        mem_ids = int(r.info("memory")["used_memory"])
        before = rss_kib(node_pid)
        socks = idle_connections(ports[0], n)
        time.sleep(1)
        grown = rss_kib(node_pid) - before
        mem_conn = int(r.info("memory")["used_memory"])
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=SERVER, protocol=mqtt.MQTTv311)
        pub.username_pw_set(SERVER, SERVER_PW)
        pub.connect("127.0.0.1", ports[1])
        pub.loop_start()
        infos = [pub.publish(topics.desired(f"c{i:06d}"), bytes(84), qos=1, retain=True) for i in range(n)]
        deadline = time.monotonic() + 120
        while not all(i.is_published() for i in infos):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{sum(not i.is_published() for i in infos)} retained desired states not PUBACKed")
            time.sleep(0.1)
        pub.disconnect()
        pub.loop_stop()
        mem_ret = int(r.info("memory")["used_memory"])
        for sk in socks:
            sk.close()
        return {
            "throughput_one_node": one,
            "throughput_across_nodes": two,
            "telemetry_one_node": tm,
            "identity_changes_per_s": round(changes_per_s, 1),
            "connections": n,
            "rss_kib_per_connection": round(grown / n, 2),
            "redis_bytes_per_identity": round((mem_ids - mem0) / n, 1),
            "redis_bytes_per_connected_device_will": round((mem_conn - mem_ids) / n, 1),
            "redis_bytes_per_retained_desired": round((mem_ret - mem_conn) / n, 1),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connections", type=int, default=1000)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tf-bench-cluster-"))
    try:
        load_before = os.getloadavg()[0]
        mosq = run_mosquitto(work, a.connections)
        print("mosquitto:", mosq, flush=True)
        clus = run_cluster(work, a.connections)
        print("cluster:", clus, flush=True)
        base = mosq["throughput"]["messages_per_s"]  # type: ignore[index]
        result = {
            "mosquitto": mosq,
            "cluster": clus,
            "one_node_vs_mosquitto": round(clus["throughput_one_node"]["messages_per_s"] / base, 3),  # type: ignore[index]
            "telemetry_one_node_vs_mosquitto": round(
                clus["telemetry_one_node"]["messages_per_s"] / mosq["telemetry"]["messages_per_s"], 3),  # type: ignore[index]
            "across_nodes_vs_mosquitto": round(clus["throughput_across_nodes"]["messages_per_s"] / base, 3),  # type: ignore[index]
            "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        }
        print("wrote", write_result("cluster", result))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
