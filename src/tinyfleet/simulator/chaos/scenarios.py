"""Chaos scenarios: what each one does to the fleet and the world, decided from the seed alone (pure).

A scenario names the release it rolls out, the rollout outcome a correct system must reach (a good release
completes; a bad one halts in its first stage and is rolled back), the faults each device suffers (chosen per
device from the scenario's seed before anything runs) and an event in the world (broker or server restart).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from tinyfleet.simulator import signals
from tinyfleet.simulator.battery import Battery
from tinyfleet.simulator.descriptor import Descriptor
from tinyfleet.simulator.device import Chaos
from tinyfleet.simulator.fleet import DevicePlan
from tinyfleet.simulator.netfaults import FLAKY
from tinyfleet.simulator.releases import Release


class Expect(Enum):
    COMPLETED = "completed"
    HALTED = "halted"


class WorldEvent(Enum):
    NONE = "none"
    BROKER_RESTART = "broker-restart"
    SERVER_RESTART = "server-restart"


GOOD = Release("vibration-1.1.0", counter=2, firmware_version="2.4.0")
# Latency 80 ms above the profile's estimate: over the bundle's 50 ms budget, so the health check fails.
BAD_FIRMWARE = Release("vibration-1.1.0-badfw", counter=2, firmware_version="2.4.0-bad",
                       descriptor=Descriptor(extra_latency_us=80_000))  # fmt: skip
BAD_MODEL = Release("vibration-1.1.0-badmodel", counter=2, firmware_version="2.3.1", corrupt_golden=True)
CHARGER_ON_S = 150.0
STAGES = [{"percent": 10}, {"percent": 50}, {"percent": 100}]


@dataclass(frozen=True)
class DeviceSetup:
    chaos: Chaos = field(default_factory=Chaos)
    battery: Battery | None = None
    ageing_offset_per_year: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    release: Release
    expect: Expect
    event: WorldEvent = WorldEvent.NONE

    def setup(self, plan: DevicePlan, seed: int) -> DeviceSetup:
        """The faults one device suffers in this scenario (a pure function of the seed and the device)."""
        rng = np.random.default_rng([seed, plan.index, 0xC4A05])
        if self.name == "power-cuts":
            if rng.random() < 0.4:  # 40 % of devices lose power 1..3 times at random flash operations
                return DeviceSetup(Chaos(cut_at_ops=[int(rng.integers(1, 40)) for _ in range(int(rng.integers(1, 4)))]))
        elif self.name == "corrupt-blocks":
            return DeviceSetup(Chaos(corrupt_block=0.15))
        elif self.name == "corrupt-blocks-sha":
            return DeviceSetup(Chaos(corrupt_block=0.15, crc_valid_corruptions=1))
        elif self.name == "flaky-network":
            return DeviceSetup(Chaos(net=FLAKY))
        elif self.name == "low-battery":
            if rng.random() < 0.4:  # below the bundle's 20 % minimum; a fast charger comes on after 150 s
                level = float(rng.uniform(3, 15))
                charger = Battery(level=level, charge_pct_per_h=1200.0, cycle_s=86400, charge_fraction=0.5,
                                  phase_s=86400 - CHARGER_ON_S)  # fmt: skip
                return DeviceSetup(battery=charger)
        elif self.name == "drift" and rng.random() < 0.25:
            return DeviceSetup(ageing_offset_per_year=away_from_baseline(plan, float(rng.uniform(100, 160))))
        return DeviceSetup()


def away_from_baseline(plan: DevicePlan, counts_per_year: float) -> tuple[float, float, float]:
    """Offset ageing that moves each axis's reading away from the calibration baseline (the harmful direction).

    The sample calibration's baseline mean is about +333 mg on every axis; an axis that reads gravity (+1000 mg)
    drifts up, the others drift down (the sensor's offset adds to every raw reading, so to the calibrated one).
    """
    gravity = np.array([0.0, signals.GRAVITY_MG, 0.0]) @ signals.ORIENTATIONS[plan.profile.env.orientation].T
    return tuple(counts_per_year if g > 333 else -counts_per_year for g in gravity)  # type: ignore[return-value]


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("bad-firmware", "a firmware whose health check fails on the device (latency over budget): the "
                 "rollout must halt in its canary stage and roll its devices back", BAD_FIRMWARE, Expect.HALTED),
        Scenario("power-cuts", "40 % of devices lose power 1-3 times at random flash operations during the "
                 "update", GOOD, Expect.COMPLETED),
        Scenario("corrupt-blocks", "15 % of delivered blocks are damaged in transit (the block CRC catches "
                 "them; the device fetches them again)", GOOD, Expect.COMPLETED),
        Scenario("corrupt-blocks-sha", "as corrupt-blocks, but one damaged block per device carries a matching "
                 "CRC: only the component's SHA-256 catches it", GOOD, Expect.COMPLETED),
        Scenario("flaky-network", "dropped connections, delayed, duplicated and reordered deliveries, "
                 "duplicated state reports", GOOD, Expect.COMPLETED),
        Scenario("low-battery", "40 % of devices start below the bundle's minimum battery and charge later: "
                 "they defer, then install", GOOD, Expect.COMPLETED),
        Scenario("bad-model", "golden vectors the model on the device does not reproduce: the rollout must "
                 "halt in its canary stage and roll back", BAD_MODEL, Expect.HALTED),
        Scenario("broker-restart", "the broker stops and starts again in the middle of the rollout", GOOD,
                 Expect.COMPLETED, WorldEvent.BROKER_RESTART),
        Scenario("server-restart", "the server (and its broker) stops and starts again in the middle of the "
                 "rollout", GOOD, Expect.COMPLETED, WorldEvent.SERVER_RESTART),
        Scenario("drift", "a quarter of the sensors age (offsets drift away from the baseline); the devices "
                 "whose input mean moved get a calibration-only bundle", GOOD, Expect.COMPLETED),
    )
}  # fmt: skip
