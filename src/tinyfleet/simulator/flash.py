"""Emulated NOR flash for one simulated device, with power cuts (pure: no I/O).

Five areas as the agent's Flash port numbers them (device/include/tinyfleet/ports.h): bank 0, bank 1, two
metadata copies and a scratch area. Storage is sparse: a sector that was never written costs nothing, so a
thousand devices with roomy banks fit in memory. The NOR rules are those of the C++ NOR model the device
tests use (device/ports/nor/nor_flash.h, through `tinyfleet._agent.NorFlash`): a write must be aligned and
may only touch erased bytes; an erase works on whole sectors.

A power cut is armed as "the k-th write or erase from now": that operation is torn (a seeded fraction of it
reaches the flash: a write's prefix and a half-programmed byte after it, an erase's first part) and
`PowerCut` is raised. The agent binding turns the exception into a failed port call
and re-raises it when the core returns, so the device's RAM state is dropped exactly where the power went.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tinyfleet import _agent

BANK0, BANK1, META0, META1, SCRATCH = range(5)


class PowerCut(Exception):  # noqa: N818  (an event, not an error of the caller)
    """The power went away in the middle of a flash operation."""


@dataclass(frozen=True)
class FlashLayout:
    sector: int = 4096
    bank_sectors: int = 32
    write_align: int = 8
    erased: int = 0xFF

    def sizes(self) -> list[int]:
        s = self.sector
        return [s * self.bank_sectors, s * self.bank_sectors, s, s, 2 * s]


class SparseNorFlash:
    """The agent's Flash port for one simulated device, over the NOR model the device tests use.

    The rules (erase before write, write granularity, whole-sector erases, the erased value, what a torn
    write or erase leaves behind) are the C++ model's (device/ports/nor, `tinyfleet._agent.NorFlash`), not a
    copy of them: this class turns its statuses into the port's answers and a cut into `PowerCut`.
    """

    def __init__(self, layout: FlashLayout, rng: np.random.Generator | Callable[[], np.random.Generator]) -> None:
        """`rng` (or how to make it, when a cut is first armed) decides how much of a torn operation lands."""
        self.layout = layout
        self.sizes = layout.sizes()
        self.cuts = 0
        self._rng = rng
        self._nor = _agent.NorFlash(layout.sector, layout.bank_sectors, layout.write_align, layout.erased, 2)

    # --- fault injection ----------------------------------------------------------------------------------

    def arm_cut(self, after_ops: int) -> None:
        """Cut the power during the `after_ops`-th write/erase from now (1 = the next one)."""
        if after_ops < 1:
            raise ValueError("a power cut is armed at least one operation ahead")
        if not isinstance(self._rng, np.random.Generator):
            self._rng = self._rng()
        self._nor.cut_power_at(after_ops - 1, int(self._rng.integers(0, 1001)))  # how much of it lands

    @property
    def cut_armed(self) -> bool:
        return self._nor.armed

    @property
    def ops(self) -> int:
        return self._nor.op_count

    def disarm(self) -> None:
        self._nor.disarm()

    def _result(self, status: str, what: str) -> bool:
        if status == "PowerLost":
            # The device loses its RAM state (the exception); the flash keeps what landed and works again.
            self.cuts += 1
            self._nor.power_on()
            raise PowerCut(f"power cut while {what}")
        return status == "Ok"

    # --- the agent's Flash port ---------------------------------------------------------------------------

    def flash_geometry(self, area: int) -> tuple[int, int, int, int]:
        return self.sizes[area], self.layout.sector, self.layout.write_align, self.layout.erased

    def flash_read(self, area: int, offset: int, length: int) -> bytes:
        data = self._nor.read(area, offset, length)
        if data is None:
            raise ValueError(f"flash read beyond area {area}: {offset}+{length} > {self.sizes[area]}")
        return data

    def flash_write(self, area: int, offset: int, data: bytes) -> bool:
        return self._result(self._nor.write(area, offset, data), f"writing area {area} at {offset}")

    def flash_erase(self, area: int, offset: int, length: int) -> bool:
        return self._result(self._nor.erase(area, offset, length), f"erasing area {area} at {offset}")

    def bytes_used(self) -> int:
        return self._nor.bytes_used
