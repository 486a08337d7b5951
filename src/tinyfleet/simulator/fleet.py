"""A simulated fleet: devices built from a seed, provisioned through the server's API, run on one loop.

`FleetSpec` and `plan_devices` are pure (who is what: id, hardware class, sensor, battery, tags); `Fleet` is the
shell that provisions them over REST, connects them over MQTT and advances simulated time in fixed steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import resource
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinyfleet.simulator import sensors, shards
from tinyfleet.simulator.api import FleetApi
from tinyfleet.simulator.bank_check import BankChecker
from tinyfleet.simulator.battery import Battery
from tinyfleet.simulator.clock import SimClock
from tinyfleet.simulator.device import Chaos, DeviceConfig, SimDevice
from tinyfleet.simulator.inference import InterpreterPool
from tinyfleet.simulator.mqtt_link import Credentials, LinkStats, misc_task
from tinyfleet.simulator.releases import estimated_latency_us

DEFAULT_MIX = {"esp32s3": 0.6, "stm32l4": 0.4}
# Devices per provisioning request (POST /api/v1/devices/batch takes up to 500): a batch costs the server about
# what one device does (docs/scaling.md), and a small one keeps a failed request's retry and undo cheap.
PROVISION_BATCH = 100


class SpecError(ValueError):
    """A fleet description that cannot be simulated; the message says which part."""


async def poll_until(pred: Callable[[], Awaitable[bool]], timeout_s: float, poll_s: float = 0.5) -> bool:
    """Poll `pred` until it holds (True) or `timeout_s` wall seconds pass (False)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if await pred():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(poll_s)


class ProvisionError(RuntimeError):
    """Provisioning a fleet failed part way; the devices it had registered were removed again."""


def parse_mix(text: str) -> dict[str, float]:
    """`esp32s3:60%,stm32l4:40%` -> {"esp32s3": 0.6, "stm32l4": 0.4}."""
    out: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        hw, sep, pct = part.partition(":")
        if not sep or not hw:
            raise SpecError(f"hardware mix entry {part!r} must look like class:percent, e.g. esp32s3:60%")
        try:
            out[hw] = float(pct.rstrip("%")) / 100
        except ValueError:
            raise SpecError(f"hardware mix entry {part!r}: {pct!r} is not a percentage") from None
    if not out or abs(sum(out.values()) - 1) > 1e-6 or any(v < 0 for v in out.values()):
        raise SpecError(f"hardware mix {text!r} must give non-negative shares adding up to 100%")
    return out


def parse_broker_node(text: str) -> tuple[str, int]:
    """`broker-2.example.net:8883` (or `[2001:db8::7]:1883`) -> (host, port), for a clustered broker's node."""
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or any(c.isspace() or not c.isprintable() or c in "/[]" for c in host):
        raise SpecError(f"broker node {text!r} must look like host:port, e.g. broker-1.example.net:1883")
    if not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise SpecError(f"broker node {text!r}: the port must be a number from 1 to 65535")
    return host, int(port)


def parse_tags(items: list[str]) -> dict[str, str]:
    out = {}
    for t in items:
        k, sep, v = t.partition("=")
        if not sep or not k:
            raise SpecError(f"tag {t!r} must look like name=value")
        out[k] = v
    return out


@dataclass(frozen=True)
class FleetSpec:
    devices: int
    seed: int = 1
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    tags: dict[str, str] = field(default_factory=dict)
    prefix: str = "sim"


@dataclass(frozen=True)
class DevicePlan:
    index: int
    device_id: str
    hw: str
    seed: int
    profile: sensors.SensorProfile
    battery_level: float
    battery_phase_s: float
    tags: dict[str, str]


def apportion(n: int, mix: dict[str, float]) -> list[str]:
    """Hardware class per device index: largest-remainder shares, interleaved so any prefix is mixed too."""
    counts = {hw: math.floor(n * share) for hw, share in mix.items()}
    rest = sorted(mix, key=lambda hw: (-(n * mix[hw] - counts[hw]), hw))
    for hw in rest[: n - sum(counts.values())]:
        counts[hw] += 1
    out: list[str] = []
    placed = dict.fromkeys(mix, 0)
    for i in range(n):
        hw = max(mix, key=lambda h: (counts[h] * (i + 1) / n - placed[h], h) if placed[h] < counts[h] else (-1e9, h))
        placed[hw] += 1
        out.append(hw)
    return out


def plan_devices(spec: FleetSpec) -> list[DevicePlan]:
    if spec.devices < 1:
        raise SpecError("a fleet needs at least one device")
    root = np.random.SeedSequence(spec.seed)
    hws = apportion(spec.devices, spec.mix)
    plans = []
    for i, child in enumerate(root.spawn(spec.devices)):
        rng = np.random.default_rng(child)
        profile = sensors.random_profile(rng)
        tags = {**profile.tags(), **spec.tags}
        plans.append(DevicePlan(i, f"{spec.prefix}-{i:05d}", hws[i], int(child.generate_state(1)[0]), profile,
                                float(rng.uniform(45, 95)), float(rng.uniform(0, 86400)), tags))  # fmt: skip
    return plans


class Fleet:
    """The devices of one simulation, their MQTT links and the simulated clock, on the running loop."""

    def __init__(self, trusted_keys: list[bytes], config: DeviceConfig | None = None, step_ms: int = 1000,
                 wall_step_s: float = 0.05) -> None:  # fmt: skip
        self.keys = trusted_keys
        self.config = config or DeviceConfig()
        self.clock = SimClock()
        self.pool = InterpreterPool()
        self.banks = BankChecker.of_der(trusted_keys)  # every boot's bank, checked again in Python
        self.stats = LinkStats()
        self.devices: list[SimDevice] = []
        self.step_ms, self.wall_step_s = step_ms, wall_step_s
        self._misc: asyncio.Task[None] | None = None
        self._stepper: asyncio.Task[None] | None = None
        self.rounds = 0
        self._held = False
        self.errors: list[str] = []  # simulator errors, one per failed device (see SimDevice.log.sim_error)

    def add(self, plan: DevicePlan, chaos: Chaos | None = None, battery: Battery | None = None,
            profile: sensors.SensorProfile | None = None) -> SimDevice:  # fmt: skip
        bat = battery or Battery(level=plan.battery_level, phase_s=plan.battery_phase_s)
        dev = SimDevice(plan.device_id, plan.hw, self.keys, seed=plan.seed, clock=self.clock, pool=self.pool,
                        latency_us=estimated_latency_us(plan.hw), profile=profile or plan.profile, battery=bat,
                        config=self.config, chaos=chaos, banks=self.banks)  # fmt: skip
        self.devices.append(dev)
        return dev

    async def provision(self, api: FleetApi, plans: list[DevicePlan], factory: dict[str, bytes],
                        concurrency: int = 4, batch: int = PROVISION_BATCH,
                        nodes: Sequence[tuple[str, int]] = ()) -> None:  # fmt: skip
        """Register every device with the server in batches (their broker credentials come back) and flash each
        one's factory image. `nodes`: the clustered broker's nodes (host, port), which the devices spread over
        (shards.broker_node) speaking MQTT 3.1.1; none: each connects where its credentials say."""
        loop = asyncio.get_running_loop()
        by_id = {d.id: d for d in self.devices}
        sem = asyncio.Semaphore(concurrency)

        registered: list[str] = []

        async def some(group: list[DevicePlan]) -> None:
            async with sem:
                got = await api.provision_batch([(p.device_id, p.hw, p.tags) for p in group])
            registered.extend(p.device_id for p in group)
            for p, one in zip(group, got, strict=True):
                b = one["broker"]
                dev = by_id[p.device_id]
                if nodes:
                    (host, port), more = shards.broker_node(nodes, p.index)
                    creds = Credentials(host, port, b["username"], b["password"], b["client_id"], protocol="3.1.1",
                                        more_nodes=more, bind_address=shards.source_address(host, p.index))
                else:
                    creds = Credentials(b["host"], b["port"], b["username"], b["password"], b["client_id"],
                                        bind_address=shards.source_address(b["host"], p.index))
                dev.attach(loop, creds, self.stats)
                dev.provision(factory[p.hw])
                dev.boot_at_ms = p.index % 5000  # spread the first connects over the first simulated seconds

        groups = [plans[i:i + batch] for i in range(0, len(plans), batch)]
        results = await asyncio.gather(*(some(g) for g in groups), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            # Never leave half a fleet: remove the devices this call registered, then say what went wrong.
            for dev_id in registered:
                with contextlib.suppress(Exception):
                    await api.delete_device(dev_id)
            why = (f"{len(errors)} of {len(groups)} batches of up to {batch} devices failed; the {len(registered)} "
                   "registered by this run")
            raise ProvisionError(f"{errors[0]} ({why} were removed again)") from errors[0]

    def step(self) -> None:
        self.clock.advance(self.step_ms)
        self.rounds += 1
        for d in self.devices:
            if d.log.sim_error is not None:
                continue
            try:
                d.tick(self.step_ms)
            except Exception as e:  # a simulator bug on one device must not stop the others: record it
                d.log.sim_error = f"{type(e).__name__}: {e}"
                d.powered = False
                self.errors.append(f"{d.id}: {d.log.sim_error}")

    def start(self) -> None:
        """Start advancing simulated time (a background task on the running loop) and paho's housekeeping."""
        if self._stepper is None:
            self._stepper = asyncio.create_task(self._step_forever())
            self._misc = asyncio.create_task(misc_task(lambda: [d.link for d in self.devices if d.link]))

    async def _step_forever(self) -> None:
        while True:
            if not self._held:
                self.step()
            await asyncio.sleep(self.wall_step_s)

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """Inside this block simulated time moves only through `run_for`, step by step at the usual pace, so
        it stands exactly where the caller left it while the caller reads the server (I/O still runs)."""
        self.start()
        self._held = True
        try:
            yield
        finally:
            self._held = False

    async def wait_for(self, pred: Callable[[], Awaitable[bool]], timeout_s: float, poll_s: float = 0.5) -> bool:
        """Poll `pred` while the fleet runs until it holds or `timeout_s` wall seconds pass."""
        self.start()
        return await poll_until(pred, timeout_s, poll_s)

    async def run_for(self, simulated_s: float) -> None:
        """Let `simulated_s` seconds of simulated time pass (exactly, rounded up to whole steps, when held)."""
        self.start()
        until = self.clock.ms + simulated_s * 1000
        while self.clock.ms < until:
            if self._held:
                self.step()
            await asyncio.sleep(self.wall_step_s)

    def stop(self) -> None:
        """Stop the devices; each says goodbye (its will, offline presence, is published) so the server does not
        keep showing them online."""
        for task in (self._stepper, self._misc):
            if task is not None:
                task.cancel()
        self._stepper = self._misc = None
        for d in self.devices:
            d.powered = False
            if d.link is not None:
                d.link.close(graceful=True, goodbye=True)

    # --- views ----------------------------------------------------------------------------------------------

    def online(self) -> int:
        return sum(1 for d in self.devices if d.link is not None and d.link.connected)

    def by_bundle(self) -> Counter[str]:
        return Counter(d.platform.image.bundle_id if d.platform.image else "-" for d in self.devices)

    def by_state(self) -> Counter[str]:
        return Counter("BRICKED" if d.log.bricked else d.state for d in self.devices)

    def live(self) -> int:
        """Devices not bricked (the ones expected online)."""
        return sum(1 for d in self.devices if not d.log.bricked)

    def view(self) -> dict[str, Any]:
        """What this process's fleet looks like now, as a worker reports it (src/tinyfleet/simulator/shards.py)."""
        with open("/proc/self/statm") as f:
            rss = int(f.read().split()[1]) * resource.getpagesize()
        return {
            "devices": len(self.devices),
            "online": self.online(),
            "live": self.live(),
            "by_bundle": dict(self.by_bundle()),
            "by_state": dict(self.by_state()),
            "simulated_s": self.clock.seconds,
            "sent": self.stats.sent,
            "received": self.stats.received,
            "connects": self.stats.connects,
            "connect_failures": self.stats.connect_failures,
            "sizes": shards.sizes_to_json(self.stats.sizes or Counter()),
            "interpreters": len(self.pool),
            "errors": list(self.errors),
            "rss_bytes": rss,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        }
