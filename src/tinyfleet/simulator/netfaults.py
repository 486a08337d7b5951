"""Network faults for one device's messages (pure: a seeded decision per message, no I/O).

`flaky-network` drops connections, delays, duplicates and (through delays) reorders what the broker delivers,
and duplicates some of what the device publishes. Each decision comes from the device's own generator, so the
same seed gives the same faults for the same sequence of messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import numpy as np


class Fate(Enum):
    DELIVER = "deliver"
    DUPLICATE = "duplicate"
    DELAY = "delay"
    DROP_CONNECTION = "drop-connection"


@dataclass(frozen=True)
class NetProfile:
    drop_connection: float = 0.0  # per delivered message: the connection dies before it arrives
    duplicate: float = 0.0
    delay: float = 0.0
    max_delay_ms: int = 3000
    duplicate_publish: float = 0.0  # per state report the device sends: it goes out twice

    @property
    def active(self) -> bool:
        return any((self.drop_connection, self.duplicate, self.delay, self.duplicate_publish))


FLAKY = NetProfile(drop_connection=0.02, duplicate=0.1, delay=0.2, max_delay_ms=4000, duplicate_publish=0.2)


@dataclass
class NetFaults:
    profile: NetProfile
    rng: np.random.Generator | Callable[[], np.random.Generator]  # or how to make it, when first needed
    counts: dict[str, int] = field(default_factory=dict)

    def _gen(self) -> np.random.Generator:
        if not isinstance(self.rng, np.random.Generator):
            self.rng = self.rng()
        return self.rng

    def inbound(self) -> tuple[Fate, int]:
        """The fate of the next message delivered to the device, and a delay in ms for DELAY."""
        p = self.profile
        if not p.active:
            return Fate.DELIVER, 0
        r = float(self._gen().random())
        fate, delay = Fate.DELIVER, 0
        if r < p.drop_connection:
            fate = Fate.DROP_CONNECTION
        elif r < p.drop_connection + p.duplicate:
            fate = Fate.DUPLICATE
        elif r < p.drop_connection + p.duplicate + p.delay:
            fate, delay = Fate.DELAY, int(self._gen().integers(1, p.max_delay_ms + 1))
        self.counts[fate.value] = self.counts.get(fate.value, 0) + 1
        return fate, delay

    def duplicate_publish(self) -> bool:
        if self.profile.duplicate_publish <= 0:
            return False
        dup = bool(self._gen().random() < self.profile.duplicate_publish)
        if dup:
            self.counts["duplicate-publish"] = self.counts.get("duplicate-publish", 0) + 1
        return dup
