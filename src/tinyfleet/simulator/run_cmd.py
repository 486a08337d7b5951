"""`fleet-sim run`: join a running fleet-server with N simulated devices and run them until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from tinyfleet.bundles.errors import BundleError
from tinyfleet.bundles.format import parse_bundle
from tinyfleet.bundles.profiles import load_profiles
from tinyfleet.bundles.signing import load_public_key, public_der
from tinyfleet.simulator.api import FleetApi
from tinyfleet.simulator.fleet import Fleet, FleetSpec, SpecError, plan_devices
from tinyfleet.simulator.limits import raise_open_files
from tinyfleet.simulator.live import summary
from tinyfleet.simulator.procfleet import ProcessFleet
from tinyfleet.simulator.releases import digest


@dataclass(frozen=True)
class RunOptions:
    spec: FleetSpec
    api_url: str
    token: str
    trust: list[Path]
    factory: list[Path]
    duration_s: float | None
    workers: int = 0  # > 0: the devices run in that many worker processes (procfleet.py)
    broker_nodes: tuple[tuple[str, int], ...] = ()  # a clustered broker's nodes the devices spread over


def load_factory(paths: list[Path]) -> dict[str, bytes]:
    """Factory images by hardware class (read from each bundle's manifest)."""
    out: dict[str, bytes] = {}
    for p in paths:
        try:
            data = p.read_bytes()
        except OSError as e:
            raise SpecError(f"cannot read factory bundle {p}: {e.strerror}") from None
        try:
            hw = parse_bundle(data).manifest.hardware_class
        except BundleError as e:
            raise SpecError(f"{p} is not a usable bundle: {e}") from None
        profile = load_profiles().get(hw)
        if profile is None:
            raise SpecError(f"{p} is for {hw!r}, which has no hardware profile")
        if len(data) > profile.bank_bytes:
            raise SpecError(f"{p} is {len(data)} bytes; a {hw} update bank holds {profile.bank_bytes} bytes")
        if hw in out:
            raise SpecError(f"two factory bundles for hardware class {hw}")
        out[hw] = data
    return out


async def run(opts: RunOptions, console: Console) -> dict[str, object]:
    factory = load_factory(opts.factory)
    missing = sorted(set(opts.spec.mix) - set(factory))
    if missing:
        raise SpecError(f"no factory bundle (--factory) for hardware class(es): {', '.join(missing)}")
    keys = []
    for p in opts.trust:
        try:
            keys.append(public_der(load_public_key(p)))
        except (OSError, ValueError, BundleError) as e:
            raise SpecError(f"cannot use trusted key {p}: {e}") from None
    plans = plan_devices(opts.spec)
    fleet = Fleet(keys)
    procs = ProcessFleet(opts.workers) if opts.workers else None
    if procs is None:
        for p in plans:
            fleet.add(p)
    api = FleetApi(opts.api_url, opts.token)

    async def view() -> dict[str, Any]:
        return await procs.view() if procs is not None else fleet.view()

    try:
        held = {b["digest"] for b in await api.bundles()}
        for data in factory.values():
            if digest(data).hex() not in held:
                await api.upload_bundle(data)
        if procs is not None:
            paths = {parse_bundle(p.read_bytes()).manifest.hardware_class: p for p in opts.factory}
            raise_open_files(len(plans) + 1024)
            await procs.start(opts.spec, opts.api_url, opts.token, keys, paths, nodes=opts.broker_nodes)
        else:
            await fleet.provision(api, plans, factory, nodes=opts.broker_nodes)
            fleet.start()
        started = time.monotonic()
        stop = asyncio.Event()  # SIGTERM (`kill`) ends the run like --duration: devices say goodbye, JSON printed
        loop = asyncio.get_running_loop()
        # A loop outside the main thread, or a platform without signals, cannot take the handler: the run then
        # ends at --duration or on Ctrl-C only.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, stop.set)
        with Live(summary(await view()), console=console, refresh_per_second=2, transient=False) as live:
            while not stop.is_set() and (opts.duration_s is None or time.monotonic() - started < opts.duration_s):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)
                live.update(summary(await view()))
        v = await view()
        return {k: v[k] for k in ("devices", "online", "by_bundle", "by_state", "simulated_s")}
    finally:
        if procs is not None:
            await procs.stop()
        fleet.stop()
        await asyncio.sleep(0.2)
        await api.close()

