"""Synthetic 3-axis motor vibration, from the machine to the sensor's raw int16 counts (numpy only).

Theory of operation. A window is built in three stages, each a pure function of a seeded `numpy` Generator:

1. `machine_vibration`: acceleration in the machine frame (radial horizontal, radial vertical, axial), in
   milli-g, for one condition: `normal`, `imbalance` (strong 1x radial), `misalignment` (2x radial plus
   strong axial 1x/2x) or `bearing` (an outer-race defect: impulses at the defect frequency ringing a
   structural resonance). Temperature loosens the machine (more 1x) and lowers the resonance; the noise
   level adds broadband noise.
2. `to_sensor_frame`: the mounting orientation rotates the machine frame into the sensor's axes and adds
   gravity (+1000 mg along "up"), so the same fault looks different on each axis per mounting.
3. `to_raw_counts`: the accelerometer turns milli-g into int16 counts with a temperature-dependent offset
   and gain (and an optional ageing drift), the errors per-device calibration corrects.

`calibrate` is the device's fixed-point calibration (docs/bundle-format.md, "Calibration"). The training
script (models/train.py) and fleet-sim's sensors use the same functions, so the model is trained on what a
simulated device would measure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FAULTS: tuple[str, ...] = ("normal", "imbalance", "misalignment", "bearing")

# Environment strata: the value each tag stands for.
TEMPERATURES_C: dict[str, float] = {"cold": -10.0, "ambient": 25.0, "hot": 60.0}
NOISE_RMS_MG: dict[str, float] = {"low": 8.0, "high": 30.0}
# Rows: sensor x, y, z expressed in the machine frame (radial_h, radial_v, axial).
ORIENTATIONS: dict[str, np.ndarray] = {
    "horizontal": np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float64),
    "vertical": np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], dtype=np.float64),
    "wall": np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 1]], dtype=np.float64),
}

GRAVITY_MG = 1000.0
REFERENCE_TEMP_C = 25.0


@dataclass(frozen=True)
class Environment:
    """One environment stratum; its tags travel with every recording as metadata."""

    temperature: str
    noise: str
    orientation: str

    def __post_init__(self) -> None:
        if self.temperature not in TEMPERATURES_C:
            raise ValueError(f"unknown temperature band {self.temperature!r}")
        if self.noise not in NOISE_RMS_MG:
            raise ValueError(f"unknown noise level {self.noise!r}")
        if self.orientation not in ORIENTATIONS:
            raise ValueError(f"unknown mounting orientation {self.orientation!r}")

    @property
    def temperature_c(self) -> float:
        return TEMPERATURES_C[self.temperature]

    def tags(self) -> dict[str, str]:
        return {"temperature": self.temperature, "noise": self.noise, "orientation": self.orientation}


def all_environments() -> list[Environment]:
    """Every stratum, in a fixed order."""
    return [Environment(t, n, o) for t in TEMPERATURES_C for n in NOISE_RMS_MG for o in ORIENTATIONS]


@dataclass(frozen=True)
class Sensor:
    """A MEMS accelerometer's transfer function: counts = offset(T) + g * counts_per_g * gain(T, age)."""

    sample_rate_hz: int = 1000
    counts_per_g: float = 1024.0
    offset_counts: tuple[int, int, int] = (12, -30, 45)
    offset_drift_counts_per_c: tuple[float, float, float] = (0.15, -0.10, 0.20)
    gain_drift_per_c: float = 2e-4
    gain_drift_per_year: float = 0.0
    adc_noise_counts: float = 0.5

    def nominal_gain_q16(self) -> int:
        """Q16.16 gain turning counts into milli-g at the reference temperature."""
        return round(65536 * GRAVITY_MG / self.counts_per_g)


def _tone(t: np.ndarray, freq: float, amp: float, phase: float) -> np.ndarray:
    return amp * np.sin(2 * np.pi * freq * t + phase)


def machine_vibration(
    rng: np.random.Generator, fault: str, env: Environment, n_samples: int, sample_rate_hz: int = 1000
) -> np.ndarray:
    """(n_samples, 3) acceleration in milli-g, machine frame (radial_h, radial_v, axial), gravity excluded."""
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r} (expected one of {', '.join(FAULTS)})")
    t = np.arange(n_samples) / sample_rate_hz
    dt_c = env.temperature_c - REFERENCE_TEMP_C
    looseness = 1.0 + 0.004 * dt_c
    f_r = rng.uniform(20.0, 30.0)  # shaft speed, 1200..1800 rpm
    ph = rng.uniform(0, 2 * np.pi, size=8)
    ellipse = rng.uniform(0.6, 1.0)

    a1 = rng.uniform(8.0, 25.0) * looseness
    h = _tone(t, f_r, a1, ph[0]) + _tone(t, 2 * f_r, rng.uniform(2.0, 8.0), ph[1])
    v = _tone(t, f_r, a1 * ellipse, ph[0] + np.pi / 2) + _tone(t, 2 * f_r, rng.uniform(2.0, 8.0), ph[2])
    a = _tone(t, f_r, rng.uniform(2.0, 8.0), ph[3])
    line = rng.uniform(2.0, 6.0)  # electromagnetic 2x line frequency
    h = h + _tone(t, 100.0, line, ph[4])
    v = v + _tone(t, 100.0, line * 0.7, ph[5])

    if fault == "imbalance":
        amp = rng.uniform(45.0, 200.0) * looseness
        h = h + _tone(t, f_r, amp, ph[6])
        v = v + _tone(t, f_r, amp * ellipse, ph[6] + np.pi / 2)
    elif fault == "misalignment":
        amp2 = rng.uniform(35.0, 120.0)
        h = h + _tone(t, 2 * f_r, amp2, ph[6])
        v = v + _tone(t, 2 * f_r, amp2 * ellipse, ph[6] + np.pi / 2)
        a = a + _tone(t, f_r, rng.uniform(40.0, 140.0), ph[7]) + _tone(t, 2 * f_r, rng.uniform(20.0, 80.0), ph[1])
    elif fault == "bearing":
        bpfo = f_r * rng.uniform(3.0, 3.6)
        f_n = 280.0 * (1.0 - 0.002 * dt_c) * rng.uniform(0.95, 1.05)
        tau = rng.uniform(0.003, 0.006)
        amp = rng.uniform(80.0, 260.0)
        ring = np.zeros(n_samples)
        first = rng.uniform(0.0, 1.0 / bpfo)
        for k in range(int((t[-1] - first) * bpfo) + 1):
            t0 = first + k / bpfo
            dt = t - t0
            on = dt >= 0
            ring[on] += amp * rng.uniform(0.7, 1.0) * np.exp(-dt[on] / tau) * np.sin(2 * np.pi * f_n * dt[on])
        v = v + ring
        h = h + 0.4 * ring
        a = a + 0.15 * ring

    noise = NOISE_RMS_MG[env.noise]
    out = np.stack([h, v, a], axis=1)
    return out + rng.normal(0.0, noise, size=out.shape)


def to_sensor_frame(accel_machine_mg: np.ndarray, orientation: str) -> np.ndarray:
    """Rotate machine-frame vibration into the sensor's axes and add gravity as the sensor reads it."""
    rot = ORIENTATIONS[orientation]
    with_gravity = accel_machine_mg + np.array([0.0, GRAVITY_MG, 0.0])
    return with_gravity @ rot.T


def to_raw_counts(
    rng: np.random.Generator,
    accel_sensor_mg: np.ndarray,
    sensor: Sensor,
    temperature_c: float,
    age_years: float = 0.0,
) -> np.ndarray:
    """(n, 3) int16 raw counts as the accelerometer reports them at this temperature and age."""
    dt_c = temperature_c - REFERENCE_TEMP_C
    gain = 1.0 + sensor.gain_drift_per_c * dt_c + sensor.gain_drift_per_year * age_years
    offset = np.asarray(sensor.offset_counts, dtype=np.float64) + np.asarray(sensor.offset_drift_counts_per_c) * dt_c
    counts = offset + accel_sensor_mg / GRAVITY_MG * sensor.counts_per_g * gain
    counts = counts + rng.normal(0.0, sensor.adc_noise_counts, size=counts.shape)
    return np.clip(np.rint(counts), -32768, 32767).astype(np.int16)


def calibrate(raw: np.ndarray, offsets: np.ndarray, gains_q16: np.ndarray) -> np.ndarray:
    """The device's calibration, per channel (last axis): clamp_i16(((raw - offset) * gain_q16) >> 16)."""
    wide = (raw.astype(np.int64) - np.asarray(offsets, dtype=np.int64)) * np.asarray(gains_q16, dtype=np.int64)
    return np.clip(wide >> 16, -32768, 32767).astype(np.int16)


def raw_window(
    rng: np.random.Generator,
    fault: str,
    env: Environment,
    n_samples: int,
    sensor: Sensor | None = None,
    age_years: float = 0.0,
) -> np.ndarray:
    """One window of raw int16 counts, shape (n_samples, 3): the three stages above in a row."""
    sensor = sensor or Sensor()
    machine = machine_vibration(rng, fault, env, n_samples, sensor.sample_rate_hz)
    return to_raw_counts(rng, to_sensor_frame(machine, env.orientation), sensor, env.temperature_c, age_years)
