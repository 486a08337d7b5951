"""The broker's side of one identity change, at 1k, 10k and 100k identities: changes per second.

What bench_provision.py measures includes the whole API request (HTTP, token checks, the database commits);
this isolates what the identity design costs the broker: an embedded Mosquitto with the identity plugin holds
N device identities (one file each), and the server's side of one change (`set_identity`, one file, then the
plugin's `apply` round trip over MQTT, which drops the device's session and confirms the file) runs C times,
one after another, as rotations of existing devices. A design whose per-change cost grows with N shows it as
a falling rate.

.venv/bin/python bench/bench_identity_broker.py [--sizes 1000,10000,100000] [--changes 2000]
Results: bench/results/identity_broker.json
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import write_result  # noqa: E402
from tinyfleet.server.broker import identities  # noqa: E402
from tinyfleet.server.broker.passwords import hash_password  # noqa: E402
from tinyfleet.server.workers.broker_control import BrokerControl  # noqa: E402
from tinyfleet.server.workers.broker_process import EmbeddedBroker  # noqa: E402
from tinyfleet.server.workers.mqtt_link import Incoming, MqttLink  # noqa: E402

SERVER_PW = "bench-server"


def measure(n: int, changes: int) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="tf-bench-idb-"))
    one_hash = hash_password("x")  # the same hash for every device: the broker reads each file all the same
    broker = EmbeddedBroker(work / "broker", server_user="fleet-server", server_password=SERVER_PW,
                            run_as=pwd.getpwuid(os.getuid()).pw_name)  # fmt: skip
    link: MqttLink | None = None
    try:
        broker.start({f"d{i:06d}": one_hash for i in range(n)})

        def answered(m: Incoming) -> None:
            control.received(m.payload)
            link.ack(m)

        link = MqttLink("127.0.0.1", broker.port, "fleet-server", SERVER_PW, "fleet-server", on_message=answered)
        control = BrokerControl(lambda t, p: link.publish(t, p, retain=False, wait=False, qos=2), link.wait_connected)
        link.connect([])
        new_hash = hash_password("y")
        step = max(1, n // changes)
        t0 = time.perf_counter()
        for k in range(changes):
            device = f"d{(k * step) % n:06d}"
            broker.set_identity(device, new_hash)
            assert control.apply(device) == identities.PRESENT
        seconds = time.perf_counter() - t0
        files = sum(1 for p in broker.identities_dir.rglob("*") if p.is_file())
        return {"identities": n, "files": files, "changes": changes, "seconds": round(seconds, 3),
                "changes_per_s": round(changes / seconds, 1)}  # fmt: skip
    finally:
        if link is not None:
            link.close()
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--changes", type=int, default=2000)
    a = ap.parse_args()
    rows = []
    for n in (int(s) for s in a.sizes.split(",") if s):
        r = measure(n, a.changes)
        rows.append(r)
        print(f"{n:>7d} identities: {r['changes']} changes in {r['seconds']} s, {r['changes_per_s']}/s", flush=True)
    result = {"sizes": rows, "last_over_first": round(rows[-1]["changes_per_s"] / rows[0]["changes_per_s"], 3)}
    print("wrote", write_result("identity_broker", result))


if __name__ == "__main__":
    main()
