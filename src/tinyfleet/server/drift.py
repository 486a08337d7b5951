"""Drift of a device's calibrated input against the calibration baseline signed into its bundle (pure).

Telemetry carries, per channel, the window's mean and variance of calibrated input (q8: units x 256). The
bundle's calibration carries the validation fleet's baseline mean and standard deviation. Per channel:

    d_c = |mu - mu0| / sigma0  +  |ln(sigma / sigma0)|

(a standardized mean shift plus a log ratio of spreads; sigma and sigma0 are floored at 1/256 of a unit).
The device's score is the largest d_c; it alerts above the configured threshold (default 1.0: one baseline
standard deviation of shift, or a spread that changed by a factor e). Telemetry holds moments, not
distributions, so a population-stability index per channel is not computable from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FLOOR = 1.0 / 256


@dataclass(frozen=True)
class Baseline:
    offset: int
    gain_q16: int
    mean_q8: int
    std_q8: int


@dataclass(frozen=True)
class ChannelDrift:
    mean: float
    std: float
    base_mean: float
    base_std: float
    score: float


def observed_std_q8(var_q8: int) -> float:
    return math.sqrt(max(0, var_q8) * 256)


def channel_drift(mean_q8: int, var_q8: int, base: Baseline) -> ChannelDrift:
    mu, sigma = mean_q8 / 256, observed_std_q8(var_q8) / 256
    mu0, sigma0 = base.mean_q8 / 256, base.std_q8 / 256
    s0, s = max(sigma0, FLOOR), max(sigma, FLOOR)
    return ChannelDrift(mu, sigma, mu0, sigma0, abs(mu - mu0) / s0 + abs(math.log(s / s0)))


def device_drift(channels: list[tuple[int, int]], baselines: list[Baseline]) -> tuple[float, list[ChannelDrift]]:
    """`channels`: (mean_q8, var_q8) per channel, in calibration order. Extra channels on either side are
    ignored (a window from a bundle with another channel count is not comparable)."""
    per = [channel_drift(m, v, b) for (m, v), b in zip(channels, baselines, strict=False)]
    return (max((c.score for c in per), default=0.0), per)


def mean_shift(reference: list[tuple[float, float]], window: list[tuple[float, float]]) -> float:
    """How far a device's input moved since its own reference window: the largest per-channel move of the
    window mean, in the reference window's standard deviations (floored at 1/256 of a unit). Pairs are (mean,
    std) in calibrated units. Unlike the score it needs no population baseline: a healthy device stays within
    a few tenths, a sensor whose offset moved goes far past 1."""
    return max((abs(m - m0) / max(s0, FLOOR) for (m0, s0), (m, _) in zip(reference, window, strict=False)),
               default=0.0)  # fmt: skip


def baseline_targets(baselines: list[Baseline]) -> list[tuple[float, float]]:
    """The bundle's baseline per channel as (mean, std) in calibrated units."""
    return [(b.mean_q8 / 256, b.std_q8 / 256) for b in baselines]


def propose_calibration(
    channels: list[tuple[int, int]], baselines: list[Baseline], targets: list[tuple[float, float]] | None = None
) -> list[Baseline]:
    """New offset and gain per channel that map the observed input onto target statistics: per channel
    (mean, std) in calibrated units, by default the bundle's baseline (mu0, sigma0).

    Calibrated x = (raw - offset) * g. Observed mean mu and spread sigma give the raw statistics; the new
    gain g' = g * sigma_t / sigma and offset' = E[raw] - mu_t / g' restore (mu_t, sigma_t). A channel whose
    spread or target spread is below 1/256 of a unit keeps its gain. Baselines stay.
    """
    if targets is None:
        targets = baseline_targets(baselines)
    out: list[Baseline] = []
    for (mean_q8, var_q8), b, (mu_t, sigma_t) in zip(channels, baselines, targets, strict=False):
        g = b.gain_q16 / 65536
        mu, sigma = mean_q8 / 256, observed_std_q8(var_q8) / 256
        g_new = g * (sigma_t / sigma) if sigma > FLOOR and sigma_t > FLOOR else g
        raw_mean = mu / g + b.offset
        out.append(
            Baseline(
                offset=round(raw_mean - mu_t / g_new),
                gain_q16=max(1, min(2**31 - 1, round(g_new * 65536))),
                mean_q8=b.mean_q8,
                std_q8=b.std_q8,
            )
        )
    return out
