"""What fleet-sim's Python check of a booted bank costs, against the agent's own boot in the same run.

fleet-sim checks every booted bank again in Python (src/tinyfleet/simulator/bank_check.py): at every boot it
observes and once more per device when a chaos run's invariants are read. The baseline is the C++ agent's
`boot()` on the same simulated device (boot selection, which verifies the bank it boots), so the ratio says
how much the check adds to every simulated boot. Devices are provisioned offline (no broker): only the flash,
the core and the check run. Run: .venv/bin/python bench/bench_bank_check.py [--devices 200]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import write_result  # noqa: E402
from tinyfleet.bundles.format import parse_bundle  # noqa: E402
from tinyfleet.bundles.signing import generate_private_key, public_der  # noqa: E402
from tinyfleet.simulator import releases  # noqa: E402
from tinyfleet.simulator.bank_check import BankChecker  # noqa: E402
from tinyfleet.simulator.fleet import Fleet, FleetSpec, plan_devices  # noqa: E402
from tinyfleet.simulator.mqtt_link import Credentials  # noqa: E402
from tinyfleet.simulator.server_proc import free_port  # noqa: E402
from tinyfleet.simulator.world import BASE  # noqa: E402

HW = "esp32s3"


def per_device_s(fn, items: list, repeat: int = 5) -> float:  # noqa: ANN001
    """Best of `repeat` passes over every device, per device, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for x in items:
            fn(x)
        best = min(best, time.perf_counter() - t0)
    return best / len(items)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=200)
    n = ap.parse_args().devices
    key = generate_private_key()
    bundle = releases.build(BASE, HW, key)
    loop = asyncio.new_event_loop()
    fleet = Fleet([public_der(key.public_key())])
    port = free_port()  # nothing listens: the devices stay offline
    devices = []
    for plan in plan_devices(FleetSpec(n, seed=1, mix={HW: 1.0})):
        d = fleet.add(plan)
        d.attach(loop, Credentials("127.0.0.1", port, plan.device_id, "pw", plan.device_id), fleet.stats)
        d.provision(bundle)
        d.power_on()
        assert d.platform.image is not None and d.log.bank_problem is None
        devices.append(d)

    def cold(d) -> None:  # noqa: ANN001  (an empty cache: parse and verify the signature too)
        d.banks = BankChecker.of_der(fleet.keys)
        d.check_bank(d.running_digest, "bench")

    boot = per_device_s(lambda d: d.agent.boot(), devices)
    check = per_device_s(lambda d: d.check_bank(d.running_digest, "bench"), devices)
    check_cold = per_device_s(cold, devices)
    assert all(d.log.bank_problem is None for d in devices)
    loop.close()
    rows = {
        "devices": n,
        "payload_bytes_hashed_per_check": sum(c.length for c in parse_bundle(bundle).components),
        "agent_boot_us": round(boot * 1e6, 1),
        "python_check_us": round(check * 1e6, 1),
        "python_check_uncached_us": round(check_cold * 1e6, 1),
        "ratio_check_to_boot": round(check / boot, 3),
        "ratio_uncached_check_to_boot": round(check_cold / boot, 3),
        "end_of_run_check_10000_devices_s": round(check * 10_000, 2),
    }
    for k, v in rows.items():
        print(f"{k:>36}: {v}")
    print(f"wrote {write_result('bank_check', rows)}")


if __name__ == "__main__":
    main()
