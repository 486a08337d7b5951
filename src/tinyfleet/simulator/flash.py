"""Emulated NOR flash for one simulated device, with power cuts (pure: no I/O).

Five areas as the agent's Flash port numbers them (device/include/tinyfleet/ports.h): bank 0, bank 1, two
metadata copies and a scratch area. Storage is sparse: a sector that was never written costs nothing, so a
thousand devices with roomy banks fit in memory. The NOR rules hold: a write must be aligned and may only
touch erased bytes; an erase works on whole sectors.

A power cut is armed as "the k-th write or erase from now": that operation is torn (a seeded prefix of it
reaches the flash) and `PowerCut` is raised. The agent binding turns the exception into a failed port call
and re-raises it when the core returns, so the device's RAM state is dropped exactly where the power went.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
    def __init__(self, layout: FlashLayout, rng: np.random.Generator) -> None:
        self.layout = layout
        self.sizes = layout.sizes()
        self.sectors: list[dict[int, bytearray]] = [{} for _ in self.sizes]
        self.ops = 0
        self.cuts = 0
        self._rng = rng
        self._cut_in: int | None = None

    # --- fault injection ----------------------------------------------------------------------------------

    def arm_cut(self, after_ops: int) -> None:
        """Cut the power during the `after_ops`-th write/erase from now (1 = the next one)."""
        if after_ops < 1:
            raise ValueError("a power cut is armed at least one operation ahead")
        self._cut_in = after_ops

    @property
    def cut_armed(self) -> bool:
        return self._cut_in is not None

    def disarm(self) -> None:
        self._cut_in = None

    def _cut_now(self) -> bool:
        self.ops += 1
        if self._cut_in is None:
            return False
        self._cut_in -= 1
        if self._cut_in > 0:
            return False
        self._cut_in = None
        self.cuts += 1
        return True

    # --- the agent's Flash port ---------------------------------------------------------------------------

    def flash_geometry(self, area: int) -> tuple[int, int, int, int]:
        return self.sizes[area], self.layout.sector, self.layout.write_align, self.layout.erased

    def _sector(self, area: int, index: int, create: bool) -> bytearray | None:
        sec = self.sectors[area].get(index)
        if sec is None and create:
            sec = bytearray([self.layout.erased]) * self.layout.sector
            self.sectors[area][index] = sec
        return sec

    def flash_read(self, area: int, offset: int, length: int) -> bytes:
        size, s = self.sizes[area], self.layout.sector
        if offset < 0 or offset + length > size:
            raise ValueError(f"flash read beyond area {area}: {offset}+{length} > {size}")
        out = bytearray()
        pos = offset
        while pos < offset + length:
            idx, within = divmod(pos, s)
            n = min(s - within, offset + length - pos)
            sec = self.sectors[area].get(idx)
            out += sec[within : within + n] if sec is not None else bytes([self.layout.erased]) * n
            pos += n
        return bytes(out)

    def flash_write(self, area: int, offset: int, data: bytes) -> bool:
        size, s, align = self.sizes[area], self.layout.sector, self.layout.write_align
        if offset % align or len(data) % align or offset + len(data) > size:
            return False
        if self.flash_read(area, offset, len(data)).count(self.layout.erased) != len(data):
            return False  # NOR: only erased bytes can be programmed
        torn = self._cut_now()
        if torn:
            keep = int(self._rng.integers(0, len(data) // align + 1)) * align
            data = data[:keep]
        pos = 0
        while pos < len(data):
            idx, within = divmod(offset + pos, s)
            n = min(s - within, len(data) - pos)
            sec = self._sector(area, idx, True)
            assert sec is not None
            sec[within : within + n] = data[pos : pos + n]
            pos += n
        if torn:
            raise PowerCut(f"power cut while writing area {area} at {offset}")
        return True

    def flash_erase(self, area: int, offset: int, length: int) -> bool:
        size, s = self.sizes[area], self.layout.sector
        if offset % s or length % s or offset + length > size:
            return False
        first, count = offset // s, length // s
        torn = self._cut_now()
        done = count
        if torn:
            done = int(self._rng.integers(0, count + 1))
        for idx in range(first, first + done):
            self.sectors[area].pop(idx, None)
        if torn:
            if done < count:  # the sector being erased when the power went: a partly erased mess
                sec = self._sector(area, first + done, False)
                if sec is not None:
                    cut = int(self._rng.integers(0, s + 1))
                    sec[:cut] = bytes([self.layout.erased]) * cut
            raise PowerCut(f"power cut while erasing area {area} at {offset}")
        return True

    def bytes_used(self) -> int:
        return sum(len(a) for a in self.sectors) * self.layout.sector
