"""Simulated time for the whole fleet (pure).

Devices read time only from here, never from the host: the fleet's driver advances it in fixed steps, so what
a device decides from time (telemetry windows, battery re-checks, trial broker timeouts) does not depend on how
fast the host happens to run the asyncio loop.
"""

from __future__ import annotations

from dataclasses import dataclass

EPOCH_UNIX = 1_790_000_000


@dataclass
class SimClock:
    ms: int = 0

    def advance(self, dt_ms: int) -> None:
        if dt_ms < 0:
            raise ValueError("simulated time never goes backwards")
        self.ms += dt_ms

    @property
    def seconds(self) -> float:
        return self.ms / 1000

    def unix(self) -> int:
        return EPOCH_UNIX + self.ms // 1000
