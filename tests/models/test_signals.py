"""The synthetic vibration generator: deterministic, physically distinct faults, device-exact calibration."""

from __future__ import annotations

import numpy as np
import pytest

from tinyfleet.bundles.components import ChannelCalibration
from tinyfleet.simulator import signals


def _spectrum_peak(x: np.ndarray, fs: int, lo: float, hi: float) -> float:
    f = np.fft.rfftfreq(x.shape[0], 1 / fs)
    mag = np.abs(np.fft.rfft(x - x.mean()))
    return float(mag[(f >= lo) & (f <= hi)].max())


def test_same_seed_same_window() -> None:
    env = signals.Environment("hot", "high", "wall")
    a = signals.raw_window(np.random.default_rng([1, 2]), "bearing", env, 256)
    b = signals.raw_window(np.random.default_rng([1, 2]), "bearing", env, 256)
    assert a.dtype == np.int16 and a.shape == (256, 3) and np.array_equal(a, b)


def test_faults_have_their_signatures() -> None:
    env = signals.Environment("ambient", "low", "horizontal")

    def mean_peak(fault: str, axis: int, lo: float, hi: float) -> float:
        peaks = [
            _spectrum_peak(signals.machine_vibration(np.random.default_rng(i), fault, env, 1024)[:, axis], 1000, lo, hi)
            for i in range(20)
        ]
        return float(np.mean(peaks))

    # imbalance: strong 1x radial; misalignment: strong axial; bearing: the ~280 Hz resonance
    assert mean_peak("imbalance", 0, 18, 32) > 3 * mean_peak("normal", 0, 18, 32)
    assert mean_peak("misalignment", 2, 18, 65) > 4 * mean_peak("normal", 2, 18, 65)
    assert mean_peak("bearing", 1, 240, 320) > 4 * mean_peak("normal", 1, 240, 320)


@pytest.mark.parametrize(("orientation", "axis", "sign"), [("horizontal", 1, 1), ("vertical", 2, 1), ("wall", 0, 1)])
def test_orientation_moves_gravity(orientation: str, axis: int, sign: int) -> None:
    still = np.zeros((4, 3))
    g = signals.to_sensor_frame(still, orientation)[0]
    assert g[axis] == sign * signals.GRAVITY_MG and np.count_nonzero(g) == 1


def test_calibrate_is_the_devices_fixed_point_formula() -> None:
    rng = np.random.default_rng(3)
    raw = rng.integers(-32768, 32767, size=(64, 3)).astype(np.int16)
    offsets, gains = np.array([12, -30, 45]), np.array([64000, 70000, 131072])
    cal = signals.calibrate(raw, offsets, gains)
    for n in range(64):
        for c in range(3):
            assert cal[n, c] == ChannelCalibration(int(offsets[c]), int(gains[c]), 0, 0).apply(int(raw[n, c]))


def test_temperature_and_age_drift_the_raw_counts() -> None:
    s = signals.Sensor(adc_noise_counts=0.0, gain_drift_per_year=0.01)
    still = signals.to_sensor_frame(np.zeros((8, 3)), "horizontal")
    ref = signals.to_raw_counts(np.random.default_rng(0), still, s, 25.0)
    hot = signals.to_raw_counts(np.random.default_rng(0), still, s, 60.0)
    old = signals.to_raw_counts(np.random.default_rng(0), still, s, 25.0, age_years=5)
    assert ref[0].tolist() == [12, -30 + 1024, 45]
    assert hot[0, 1] > ref[0, 1] and hot[0, 0] != ref[0, 0]
    assert old[0, 1] == round(-30 + 1024 * 1.05)


def test_unknown_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown temperature band"):
        signals.Environment("warm", "low", "wall")
    with pytest.raises(ValueError, match="unknown fault"):
        signals.machine_vibration(np.random.default_rng(0), "rust", signals.Environment("hot", "low", "wall"), 8)
