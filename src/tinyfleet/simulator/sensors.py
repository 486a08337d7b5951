"""A simulated device's accelerometer: the machine's vibration as raw counts, drifting with heat and age (pure).

The signal chain is `src/tinyfleet/simulator/signals.py` (the one the sample models were trained on). On top of it each
device has its own sensor: a factory offset spread around the nominal one, a mounting orientation, an
environment stratum, a temperature that cycles around the stratum's value, and ageing that moves offset and
gain. What the device measures therefore drifts away from its bundle's calibration baseline in the ways a
field fleet does, and a calibration-only update can bring it back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from tinyfleet.simulator import signals

WINDOW = 256


@dataclass(frozen=True)
class SensorProfile:
    """Everything fixed about one device's sensor and where it is mounted."""

    env: signals.Environment
    offset_counts: tuple[int, int, int]
    temp_cycle_amplitude_c: float = 8.0
    temp_cycle_period_s: float = 86400.0
    temp_cycle_phase: float = 0.0
    offset_drift_counts_per_year: tuple[float, float, float] = (0.0, 0.0, 0.0)
    gain_drift_per_year: float = 0.0
    fault: str = "normal"

    def tags(self) -> dict[str, str]:
        return self.env.tags()


def random_profile(rng: np.random.Generator, env: signals.Environment | None = None) -> SensorProfile:
    """A device's sensor as it leaves the factory: offsets spread +-6 counts around the nominal ones."""
    envs = signals.all_environments()
    env = env or envs[int(rng.integers(0, len(envs)))]
    nominal = signals.Sensor().offset_counts
    offsets = tuple(int(o + rng.integers(-6, 7)) for o in nominal)
    return SensorProfile(env=env, offset_counts=offsets, temp_cycle_phase=float(rng.uniform(0, 2 * math.pi)))  # type: ignore[arg-type]


def aged(profile: SensorProfile, offset_per_year: tuple[float, float, float], gain_per_year: float) -> SensorProfile:
    """The same sensor with an ageing drift (the drift scenario's worn-out mountings)."""
    return replace(profile, offset_drift_counts_per_year=offset_per_year, gain_drift_per_year=gain_per_year)


def temperature_c(profile: SensorProfile, t_s: float) -> float:
    """The sensor's temperature at simulated time `t_s`: the stratum's value plus a daily cycle."""
    base = profile.env.temperature_c
    return base + profile.temp_cycle_amplitude_c * math.sin(2 * math.pi * t_s / profile.temp_cycle_period_s
                                                            + profile.temp_cycle_phase)  # fmt: skip


def sensor_at(profile: SensorProfile, age_years: float) -> signals.Sensor:
    """The accelerometer's transfer function at this age (offset and gain moved by ageing)."""
    drift = profile.offset_drift_counts_per_year
    offsets = tuple(round(o + d * age_years) for o, d in zip(profile.offset_counts, drift, strict=True))
    return signals.Sensor(offset_counts=offsets, gain_drift_per_year=profile.gain_drift_per_year)  # type: ignore[arg-type]


def read_window(
    rng: np.random.Generator, profile: SensorProfile, t_s: float, age_years: float, n: int = WINDOW
) -> tuple[np.ndarray, float]:
    """(n, 3) int16 raw counts for one window at simulated time `t_s`, and the temperature it was taken at."""
    temp = temperature_c(profile, t_s)
    sensor = sensor_at(profile, age_years)
    machine = signals.machine_vibration(rng, profile.fault, profile.env, n, sensor.sample_rate_hz)
    raw = signals.to_raw_counts(rng, signals.to_sensor_frame(machine, profile.env.orientation), sensor, temp, age_years)
    return raw, temp
