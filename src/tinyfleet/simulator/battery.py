"""A device's battery: drains with time and work, charges while its charger runs (pure).

The charger follows a day cycle (e.g. solar: on for `charge_fraction` of every `cycle_s`), phase-shifted per
device, so a fleet's battery levels spread out the way a field fleet's do.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Battery:
    level: float = 90.0
    drain_pct_per_h: float = 0.5
    charge_pct_per_h: float = 20.0
    cycle_s: float = 86400.0
    charge_fraction: float = 0.4
    phase_s: float = 0.0
    flash_op_pct: float = 0.0005
    inference_pct: float = 0.0001

    def charging(self, t_s: float) -> bool:
        return ((t_s + self.phase_s) % self.cycle_s) < self.charge_fraction * self.cycle_s

    def advance(self, t_s: float, dt_s: float) -> None:
        rate = self.charge_pct_per_h if self.charging(t_s) else 0.0
        self.level = min(100.0, max(0.0, self.level + (rate - self.drain_pct_per_h) * dt_s / 3600))

    def spend(self, pct: float) -> None:
        self.level = max(0.0, self.level - pct)

    def pct(self) -> int:
        return int(self.level)
