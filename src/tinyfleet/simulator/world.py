"""A whole simulated world: a fleet-server process (with its Mosquitto), a signing key, releases, a fleet.

Chaos runs, the demo, the benchmark and the tests all start from here; `fleet-sim run` instead joins a
server somebody else runs. Everything the world does to the server goes through its REST API.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from tinyfleet.bundles.signing import generate_private_key, key_id, load_public_key, public_der, public_pem
from tinyfleet.simulator import releases
from tinyfleet.simulator.api import ApiError, FleetApi
from tinyfleet.simulator.device import DeviceConfig, SimDevice
from tinyfleet.simulator.fleet import DevicePlan, Fleet, FleetSpec, plan_devices
from tinyfleet.simulator.procfleet import ProcessFleet
from tinyfleet.simulator.releases import Release, bundle_id
from tinyfleet.simulator.server_proc import ADMIN_TOKEN, ServerProcess

BASE = Release("vibration-1.0.0", counter=1)


@dataclass
class World:
    workdir: Path
    spec: FleetSpec
    config: DeviceConfig = field(default_factory=DeviceConfig)
    db_url: str | None = None
    key: ec.EllipticCurvePrivateKey = field(default_factory=generate_private_key)
    trust: list[Path] = field(default_factory=list)  # more public keys the server and every device trust
    # > 0: the devices run in that many worker processes (procfleet.py), `fleet` stays empty, and the world is
    # read through `view()`; chaos scenarios and the demo, which reach into single devices, use one process.
    workers: int = 0
    wall_step_s: float = 0.05  # wall seconds per simulated step (1000 ms): the pace of simulated time
    # A clustered broker's nodes (host, port) the devices spread over; the server's own cluster settings go into
    # server.env (docs/scaling.md). Empty: the server's embedded Mosquitto.
    broker_nodes: list[tuple[str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pub = self.workdir / "signing.pub.pem"
        self.pub.write_bytes(public_pem(self.key.public_key()))
        self.server = ServerProcess(self.workdir / "server", self.pub, db_url=self.db_url)
        self.server.env["TINYFLEET_TRUSTED_KEY_FILES"] = json.dumps([str(p.resolve()) for p in [self.pub, *self.trust]])
        self.server.env["TINYFLEET_PRESENCE_TIMEOUT_S"] = str(presence_timeout_s(self.config, self.wall_step_s))
        keys = [public_der(self.key.public_key())] + [public_der(load_public_key(p)) for p in self.trust]
        self.keys = keys
        self.fleet = Fleet(keys, self.config, wall_step_s=self.wall_step_s)
        self.procs = ProcessFleet(self.workers) if self.workers else None
        # every simulated firmware trusts the extra keys too: each upload declares them (grants_key)
        self.grants = tuple(key_id(load_public_key(p)).hex() for p in self.trust)
        self.plans: list[DevicePlan] = plan_devices(self.spec)
        self.bundles: dict[str, bytes] = {}  # bundle id -> bytes
        self.api: FleetApi | None = None

    @property
    def hws(self) -> list[str]:
        return sorted({p.hw for p in self.plans})

    async def start(self, setup: Callable[[DevicePlan], dict[str, Any]] = lambda p: {}) -> None:
        """Start the server, publish the base release, provision every device (`setup(plan)`: extra arguments
        for Fleet.add, e.g. chaos, battery, profile) and start the fleet."""
        await asyncio.to_thread(self.server.start)
        self.api = FleetApi(self.server.url, ADMIN_TOKEN)
        factory = {}
        for hw in self.hws:
            factory[hw] = await self.release(BASE, hw, publish=True)
        if self.procs is not None:
            paths = {}
            for hw, data in factory.items():
                paths[hw] = self.workdir / f"factory-{hw}.tfb"
                paths[hw].write_bytes(data)
            await self.procs.start(self.spec, self.server.url, ADMIN_TOKEN, self.keys, paths,
                                   wall_step_s=self.wall_step_s, nodes=self.broker_nodes)
            return
        for p in self.plans:
            self.fleet.add(p, **setup(p))
        await self.fleet.provision(self.api, self.plans, factory, nodes=self.broker_nodes)
        self.fleet.start()

    async def release(self, release: Release, hw: str, publish: bool = False) -> bytes:
        """Build, sign and upload a release for one hardware class (publishing its blocks if asked)."""
        assert self.api is not None
        data = await asyncio.to_thread(releases.build, release, hw, self.key)
        bid = bundle_id(release, hw)
        await self.api.upload_bundle(data, self.grants)
        if publish:
            await self.api.publish_bundle(bid)
        self.bundles[bid] = data
        return data

    async def settle(self, bundle_ids: set[str] | None = None, timeout_s: float = 120.0) -> bool:
        """Run until every live device is online and the server sees each on one of `bundle_ids` (or any)."""
        assert self.api is not None
        api = self.api

        async def done() -> bool:
            view = await self.view()
            if view["errors"]:
                raise RuntimeError(f"simulator error on {len(view['errors'])} device(s): {view['errors'][0]}")
            if view["online"] < view["live"]:
                return False
            views = await api.devices()
            want = bundle_ids
            return len(views) >= len(self.plans) and all(
                v["online"] and v["running_bundle"] is not None and (want is None or v["running_bundle"] in want)
                for v in views
                if v["id"] in self.ids
            )

        return await self.wait_for(tolerant(done), timeout_s, poll_s=self.poll_s)

    async def view(self) -> dict[str, Any]:
        """The whole fleet now, merged over its worker processes when it has some (shards.py)."""
        return await self.procs.view() if self.procs is not None else self.fleet.view()

    async def wait_for(self, pred: Callable[[], Awaitable[bool]], timeout_s: float, poll_s: float = 0.5) -> bool:
        if self.procs is not None:
            return await self.procs.wait_for(pred, timeout_s, poll_s)
        return await self.fleet.wait_for(pred, timeout_s, poll_s)

    @property
    def poll_s(self) -> float:
        """How often to read the server while waiting: a large fleet's device and rollout views cost it."""
        return 0.5 if len(self.plans) <= 2000 else 5.0

    @functools.cached_property
    def ids(self) -> frozenset[str]:
        """The fleet's device ids, built once: `settle` tests every device the server lists against it."""
        return frozenset(p.device_id for p in self.plans)

    async def rollout(self, release: Release, hw: str, stages: list[dict[str, Any]], **kw: Any) -> int:
        assert self.api is not None
        body = {"bundle_id": bundle_id(release, hw), "stages": stages, "target": {"hardware_class": hw}, **kw}
        got = await self.api.create_rollout(body)
        return int(got["rollout"]["id"])

    async def wait_rollouts(self, ids: list[int], timeout_s: float = 300.0) -> dict[int, dict]:
        """Run until every rollout is completed, halted or aborted (or the timeout); their last status."""
        terminal = ("completed", "halted", "aborted")
        assert self.api is not None
        api = self.api
        last: dict[int, dict] = {}

        async def done() -> bool:
            for rid in ids:
                last[rid] = await api.rollout(rid)
            return all(last[r]["rollout"]["state"] in terminal for r in ids)

        await self.wait_for(tolerant(done), timeout_s, poll_s=self.poll_s)
        return last

    def device(self, device_id: str) -> SimDevice:
        for d in self.fleet.devices:
            if d.id == device_id:
                return d
        raise KeyError(device_id)

    async def stop(self) -> None:
        if self.procs is not None:
            await self.procs.stop()
        self.fleet.stop()
        await asyncio.sleep(0.2)
        if self.api is not None:
            await self.api.close()
        await asyncio.to_thread(self.server.stop)


def presence_timeout_s(config: DeviceConfig, wall_step_s: float) -> float:
    """The server's presence timeout (wall seconds) for a fleet whose simulated time is paced: ten telemetry
    periods of silence, as the default of 300 s is for devices that send every 30 s, and never below that default.
    Unscaled, a large paced fleet (16.7 wall seconds per simulated second at 50,000 devices) would be shown
    offline between two of its windows."""
    return max(300.0, 10 * config.telemetry_period_s * wall_step_s)  # a step is one simulated second


def tolerant(pred: Callable[[], Awaitable[bool]]) -> Callable[[], Awaitable[bool]]:
    """A predicate over the API that counts "the server is away" (a restart) as not yet."""

    async def wrapped() -> bool:
        try:
            return await pred()
        except ApiError:
            return False

    return wrapped
