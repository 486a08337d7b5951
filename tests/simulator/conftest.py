"""Fixtures for fleet-sim tests: a whole simulated world (fleet-server process + Mosquitto + devices)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tinyfleet.simulator.fleet import FleetSpec
from tinyfleet.simulator.world import World


@contextlib.asynccontextmanager
async def settled_world(workdir: Path, spec: FleetSpec) -> AsyncIterator[World]:
    """A started world whose fleet is online on its factory bundle; stopped afterwards."""
    w = World(workdir, spec)
    try:
        await w.start()
        assert await w.settle(timeout_s=60), "the fleet did not come online on its factory bundle"
        yield w
    finally:
        await w.stop()


@pytest.fixture
async def world20(tmp_path: Path) -> AsyncIterator[World]:
    async with settled_world(tmp_path / "world", FleetSpec(20, seed=7)) as w:
        yield w
