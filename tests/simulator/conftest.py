"""Fixtures for fleet-sim tests: a whole simulated world (fleet-server process + Mosquitto + devices)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tinyfleet.simulator.fleet import FleetSpec
from tinyfleet.simulator.world import World


@pytest.fixture
async def world20(tmp_path: Path) -> AsyncIterator[World]:
    w = World(tmp_path / "world", FleetSpec(20, seed=7))
    try:
        await w.start()
        assert await w.settle(timeout_s=60), "the fleet did not come online on its factory bundle"
        yield w
    finally:
        await w.stop()
