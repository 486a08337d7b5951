"""Telemetry ingest: messages per second the server persists, against a bare paho subscriber, same run.

One embedded Mosquitto, D provisioned devices each publishing M TFTM telemetry records (QoS 0, as the
protocol says) as fast as paho sends them. Two subscribers receive the same stream from the same broker at the
same time: a bare paho client that only counts messages, and the fleet server, which decodes, deduplicates,
stores each record, updates per-device aggregates and drift scores, and commits in batches. The ratio is
(messages the server persisted per second) / (messages the bare subscriber received per second), both
timed from the first publish to the last message handled. Goal (issue 5): ratio >= 0.5.

Run on SQLite (the default) and on PostgreSQL (TINYFLEET_BENCH_PG, default the local test database; skipped
with a note if unreachable): .venv/bin/python bench/bench_ingest.py [--devices D] [--messages M]
Results: bench/results/ingest.json
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlmodel import Session  # noqa: E402

from bench.common import write_result  # noqa: E402
from tests.server.srv_bundles import make_bundle, write_public_key  # noqa: E402
from tinyfleet.bundles import generate_private_key  # noqa: E402
from tinyfleet.protocol import topics  # noqa: E402
from tinyfleet.protocol.records import ChannelStats, Telemetry  # noqa: E402
from tinyfleet.server.db.engine import normalize_url  # noqa: E402
from tinyfleet.server.runtime import FleetRuntime  # noqa: E402
from tinyfleet.server.services import bundles, devices  # noqa: E402
from tinyfleet.server.settings import Settings  # noqa: E402

PG_URL = os.environ.get("TINYFLEET_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
HIST = (0,) * 8 + (3, 5, 9, 12, 10, 6, 3, 2)


class Counter:
    def __init__(self) -> None:
        self.n = 0
        self.last = 0.0
        self.lock = threading.Lock()

    def hit(self, *_a: object) -> None:
        with self.lock:
            self.n += 1
            self.last = time.perf_counter()


def _client(port: int, user: str, password: str, client_id: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.username_pw_set(user, password)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port, keepalive=60)
    c.loop_start()
    return c


def _wait(pred: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.005)
    return pred()


def run(db_url: str, n_devices: int, n_messages: int, work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    key = generate_private_key()
    pub = write_public_key(key, work / "pub.pem")
    settings = Settings(data_dir=work / "data", database_url=db_url, trusted_key_files=[pub], run_model_gate=False,
                        broker_replica_users=["bench-bare"])  # the bare subscriber's own user  # fmt: skip
    rt = FleetRuntime(settings)
    rt.start()
    try:
        data = make_bundle(key, "bench-1")
        with Session(rt.engine) as s:
            row = bundles.upload(s, data=data, keys=rt.keys, gate=None, bundle_dir=settings.bundle_dir, actor="bench")
            digest = bytes.fromhex(row.digest)
            passwords = {}
            for i in range(n_devices):
                _, passwords[f"b{i:04d}"] = devices.provision(s, rt.credential_sink, f"b{i:04d}", "stm32l4", {})
        bare = Counter()
        sub = _client(rt.broker_port, "bench-bare", rt.broker_password, "bench-bare")
        sub.on_message = bare.hit
        sub.subscribe(topics.TELEMETRY_ALL, qos=0)
        pubs = []
        for dev, pw in passwords.items():  # the broker reloads its password file just after provisioning
            for _ in range(100):
                c = _client(rt.broker_port, dev, pw, dev)
                if _wait(c.is_connected, 0.5):
                    break
                c.loop_stop()
            pubs.append((dev, c))
        time.sleep(0.5)
        assert rt.ingest is not None
        base = rt.ingest.persisted
        payloads = {
            dev: [
                Telemetry(1, w + 1, int(time.time()) - 60, 60, 6000, 60, w % 3, 0, 900, 1200, -32768, -32768,
                          -32768, digest, HIST, (ChannelStats(25600 + w, 102400), ChannelStats(-40, 25600))).encode()
                for w in range(n_messages)
            ]
            for dev, _ in pubs
        }  # fmt: skip
        total = n_devices * n_messages
        t0 = time.perf_counter()

        def blast(dev: str, c: mqtt.Client) -> None:
            for p in payloads[dev]:
                c.publish(topics.telemetry(dev), p, qos=0)

        threads = [threading.Thread(target=blast, args=pc) for pc in pubs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        bare_ok = _wait(lambda: bare.n >= total, 120)
        server_ok = _wait(lambda: rt.ingest.persisted - base >= total, 600)  # type: ignore[union-attr]
        t_server = time.perf_counter() - t0
        t_bare = bare.last - t0
        persisted = rt.ingest.persisted - base
        for _, c in pubs:
            c.disconnect()
            c.loop_stop()
        sub.disconnect()
        sub.loop_stop()
        bare_rate, server_rate = bare.n / t_bare, persisted / t_server
        return {
            "messages": total,
            "bare_received": bare.n,
            "server_persisted": persisted,
            "complete": bool(bare_ok and server_ok),
            "bare_msg_s": round(bare_rate, 1),
            "server_msg_s": round(server_rate, 1),
            "ratio": round(server_rate / bare_rate, 3),
        }
    finally:
        rt.stop()


def _pg_schema() -> tuple[str, Any] | None:
    try:
        admin = create_engine(normalize_url(PG_URL), connect_args={"connect_timeout": 3})
        schema = f"tfbench_{uuid.uuid4().hex[:10]}"
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # report, don't fail: the SQLite figure still stands
        print(f"PostgreSQL at {PG_URL} unreachable: {str(exc).splitlines()[0]}")
        return None
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}", (admin, schema)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--messages", type=int, default=250, help="per device")
    args = ap.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = run(f"sqlite:///{tmp}/sqlite/fleet.db", args.devices, args.messages, Path(tmp) / "sqlite")
        print("sqlite", results["sqlite"])
        pg = _pg_schema()
        if pg is not None:
            url, (admin, schema) = pg
            try:
                results["postgresql"] = run(url, args.devices, args.messages, Path(tmp) / "pg")
                print("postgresql", results["postgresql"])
            finally:
                with admin.begin() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        else:
            results["postgresql"] = {"skipped": f"PostgreSQL at {PG_URL} unreachable"}
    path = write_result(
        "ingest",
        {"goal_ratio": 0.5, "devices": args.devices, "messages_per_device": args.messages, "results": results},
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
