"""Drift score and calibration proposal, against the device's exact calibration arithmetic."""

from __future__ import annotations

import math
import random

from tinyfleet.bundles.components import ChannelCalibration
from tinyfleet.server.drift import Baseline, device_drift, mean_shift, propose_calibration


def window_stats(xs: list[int]) -> tuple[int, int]:
    """mean_q8 / var_q8 exactly as docs/device-protocol.md (TFTM) defines them."""
    n, s, q = len(xs), sum(xs), sum(x * x for x in xs)
    mean_q8 = int(s * 256 / n) if s >= 0 else -int(-s * 256 / n)
    var_q8 = max(0, (q * 256) // n - (mean_q8 * mean_q8) // 256)
    return mean_q8, var_q8


def test_no_drift_on_baseline_data_and_a_shift_scores_in_sigmas() -> None:
    rng = random.Random(1)
    base = Baseline(offset=0, gain_q16=65536, mean_q8=100 * 256, std_q8=20 * 256)
    same = [round(rng.gauss(100, 20)) for _ in range(20000)]
    score, _ = device_drift([window_stats(same)], [base])
    assert score < 0.05
    shifted = [round(rng.gauss(140, 20)) for _ in range(20000)]
    score, per = device_drift([window_stats(shifted)], [base])
    assert 1.9 < score < 2.1 and abs(per[0].mean - 140) < 1
    wider = [round(rng.gauss(100, 54)) for _ in range(20000)]
    assert 0.9 < device_drift([window_stats(wider)], [base])[0] < 1.1  # ln(54/20) ~ 0.99


def test_proposed_calibration_brings_drifted_sensor_back_to_baseline() -> None:
    rng = random.Random(2)
    cal = ChannelCalibration(offset=50, gain_q16=2 * 65536, baseline_mean_q8=0, baseline_std_q8=30 * 256)
    base = Baseline(cal.offset, cal.gain_q16, cal.baseline_mean_q8, cal.baseline_std_q8)
    # an aged sensor: raw readings offset by +12 and 30 % more gain than when the baseline was recorded
    raw = [round(50 + rng.gauss(12, 15 * 1.3)) for _ in range(30000)]
    drifted = window_stats([cal.apply(r) for r in raw])
    assert device_drift([drifted], [base])[0] > 1.0
    (new,) = propose_calibration([drifted], [base])
    fixed = ChannelCalibration(new.offset, new.gain_q16, new.mean_q8, new.std_q8)
    after = window_stats([fixed.apply(r) for r in raw])
    assert device_drift([after], [base])[0] < 0.05


def test_proposal_against_the_devices_own_reference_corrects_only_what_changed() -> None:
    """One device's input spreads far less than the validation population's: mapped onto the baseline its
    gain would grow by the ratio of the two; mapped onto its own reference window only the ageing is undone."""
    rng = random.Random(3)
    cal = ChannelCalibration(offset=0, gain_q16=65536, baseline_mean_q8=0, baseline_std_q8=400 * 256)
    base = Baseline(cal.offset, cal.gain_q16, cal.baseline_mean_q8, cal.baseline_std_q8)
    healthy = [round(rng.gauss(300, 20)) for _ in range(30000)]
    ref_mean_q8, ref_var_q8 = window_stats([cal.apply(r) for r in healthy])
    reference = (ref_mean_q8 / 256, math.sqrt(ref_var_q8 * 256) / 256)
    aged = [r + 150 for r in healthy]  # the sensor's offset moved 150 counts
    drifted = window_stats([cal.apply(r) for r in aged])
    (own,) = propose_calibration([drifted], [base], [reference])
    assert abs(own.offset - 150) <= 1 and abs(own.gain_q16 - 65536) <= 66  # offset undone, gain within 0.1 %
    fixed = ChannelCalibration(own.offset, own.gain_q16, own.mean_q8, own.std_q8)
    mean_q8, var_q8 = window_stats([fixed.apply(r) for r in aged])
    assert abs(mean_q8 - ref_mean_q8) <= 256 and abs(var_q8 - ref_var_q8) <= ref_var_q8 // 50
    (pop,) = propose_calibration([drifted], [base])  # onto the population's baseline: gain x ~20
    assert 19 < pop.gain_q16 / 65536 < 21


def test_mean_shift_is_in_the_reference_windows_own_spread() -> None:
    reference = [(10.0, 2.0), (-5.0, 0.5), (0.0, 0.0)]
    assert mean_shift(reference, [(11.0, 9.0), (-5.0, 0.5), (0.0, 3.0)]) == 0.5  # spread changes do not count
    assert mean_shift(reference, [(10.0, 2.0), (-6.0, 0.5), (0.0, 0.0)]) == 2.0  # the largest channel's move
    assert mean_shift(reference, [(10.0, 2.0), (-5.0, 0.5), (1 / 256, 0.0)]) == 1.0  # zero spread floored at 1/256
    assert mean_shift([], []) == 0.0
