"""Where a simulated device's memory goes: RSS growth per device, part by part, for N devices in this process.

Parts, added in this order and each measured as the process's RSS growth divided by N: the device objects
(emulated platform, sensor and fault generators, log), the factory bundle written to each flash, 15 simulated
seconds booted (the agent core, sensing) with no broker to reach, an MQTT link connected to a real Mosquitto
(the project's generated configuration, EmbeddedBroker) with the device's subscriptions, and a second bundle
written to each device's other bank (as after an update).
Python's own allocations per part come from tracemalloc's total; the rest is C/C++ (the agent, its flash, paho's
sockets) and allocator slack. Not part of `make bench` (it measures no ratio): a tool for the simulator's memory.
Run: .venv/bin/python bench/fleet_memory.py [--devices 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tinyfleet import _agent  # noqa: E402
from tinyfleet.bundles.signing import generate_private_key, public_der  # noqa: E402
from tinyfleet.server.broker.passwords import hash_password  # noqa: E402
from tinyfleet.server.workers.broker_process import EmbeddedBroker  # noqa: E402
from tinyfleet.simulator import releases  # noqa: E402
from tinyfleet.simulator.chaos.scenarios import GOOD  # noqa: E402
from tinyfleet.simulator.flash import BANK1  # noqa: E402
from tinyfleet.simulator.fleet import Fleet, FleetSpec, plan_devices  # noqa: E402
from tinyfleet.simulator.limits import raise_open_files  # noqa: E402
from tinyfleet.simulator.mqtt_link import Credentials  # noqa: E402
from tinyfleet.simulator.server_proc import free_port  # noqa: E402
from tinyfleet.simulator.world import BASE  # noqa: E402


def rss() -> int:
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


async def measure(n: int, workdir: Path) -> dict:
    raise_open_files(2 * n + 1024)
    key = generate_private_key()
    factory = {hw: releases.build(BASE, hw, key) for hw in releases.HARDWARE_CLASSES}
    update = {hw: releases.build(GOOD, hw, key) for hw in releases.HARDWARE_CLASSES}
    for hw in releases.HARDWARE_CLASSES:
        releases.estimated_latency_us(hw)
    plans = plan_devices(FleetSpec(n, seed=1))
    broker = EmbeddedBroker(workdir / "broker", server_user="bench", server_password="bench-pw")
    broker.start({p.device_id: hash_password("pw", iterations=1) for p in plans})
    fleet = Fleet([public_der(key.public_key())])
    parts: dict[str, dict] = {}
    tracemalloc.start()

    def step(name: str, r0: int, t0: int) -> None:
        py = tracemalloc.get_traced_memory()[0] - t0
        parts[name] = {"rss_kib_per_device": round((rss() - r0) / n / 1024, 2),
                       "python_kib_per_device": round(py / n / 1024, 2)}  # fmt: skip

    try:
        r0, t0 = rss(), tracemalloc.get_traced_memory()[0]
        for p in plans:
            fleet.add(p)
        step("device objects", r0, t0)
        r0, t0 = rss(), tracemalloc.get_traced_memory()[0]
        for d in fleet.devices:
            d.provision(factory[d.hw])
        step("factory bundle in flash", r0, t0)
        r0, t0 = rss(), tracemalloc.get_traced_memory()[0]
        loop = asyncio.get_running_loop()
        closed = free_port()  # first no broker: the devices boot, sense and retry their connection
        for d in fleet.devices:
            d.attach(loop, Credentials("127.0.0.1", closed, d.id, "pw", d.id), fleet.stats)
        await fleet.run_for(15)
        step("booted, sensing, not connected", r0, t0)
        r0, t0 = rss(), tracemalloc.get_traced_memory()[0]
        before = tracemalloc.take_snapshot()
        for d in fleet.devices:
            assert d.link is not None
            d.link.creds.port = broker.port
        deadline = time.monotonic() + 600
        while fleet.online() < n and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        await asyncio.sleep(3)  # subscriptions and first telemetry
        step("MQTT link, connected", r0, t0)
        link_top = tracemalloc.take_snapshot().compare_to(before, "lineno")[:15]
        r0, t0 = rss(), tracemalloc.get_traced_memory()[0]
        for d in fleet.devices:
            d.platform.flash_write(BANK1, 0, update[d.hw])
        step("update bundle in the other bank", r0, t0)
        top = tracemalloc.take_snapshot().statistics("lineno")[:12]
        sectors, pooled = _agent.NorFlash.pooled()
        return {
            "devices": n,
            "online": fleet.online(),
            "parts": parts,
            "rss_total_kib_per_device": round(rss() / n / 1024, 1),
            "flash_sectors_pooled": sectors,
            "flash_bytes_pooled": pooled,
            "flash_bytes_held_per_device": sum(d.platform.bytes_used() for d in fleet.devices) // n,
            "python_top_link": [f"{s.traceback[0].filename.split('site-packages/')[-1]}:{s.traceback[0].lineno} "
                                f"{s.size_diff / n:.0f} B/device" for s in link_top],  # fmt: skip
            "python_top": [f"{s.traceback[0].filename.split('site-packages/')[-1]}:{s.traceback[0].lineno} "
                           f"{s.size / n:.0f} B/device" for s in top],  # fmt: skip
        }
    finally:
        fleet.stop()
        await asyncio.sleep(1)
        broker.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=2000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="fleet-memory-") as tmp:
        print(json.dumps(asyncio.run(measure(args.devices, Path(tmp))), indent=2))


if __name__ == "__main__":
    main()
