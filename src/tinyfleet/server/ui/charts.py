"""Chart geometry for the pages' inline SVG (pure): data in, coordinates out. Charts are drawn by the server,
so they read without JavaScript; each point also carries its value for screen readers and tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

W, H = 640, 220
PAD_L, PAD_R, PAD_T, PAD_B = 56, 12, 12, 28


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    value: float
    label: str
    key: str = ""  # which window (epoch:seq)


@dataclass(frozen=True)
class HLine:
    y: float
    value: float
    label: str


@dataclass
class LineChart:
    """One channel over time: the window means (points, line), the window spread (mean +- std, band), the
    reference mean and the alert threshold around it (horizontal lines)."""

    title: str
    points: list[Point] = field(default_factory=list)
    band: str = ""  # SVG polygon points
    lines: list[HLine] = field(default_factory=list)
    ticks: list[HLine] = field(default_factory=list)
    width: int = W
    height: int = H

    @property
    def path(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


def _scale(lo: float, hi: float) -> tuple[float, float]:
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    pad = (hi - lo) * 0.08
    return lo - pad, hi + pad


def _ticks(lo: float, hi: float, y: object, n: int = 4) -> list[HLine]:
    out = []
    for i in range(n + 1):
        v = lo + (hi - lo) * i / n
        out.append(HLine(y(v), v, f"{v:,.0f}" if abs(hi - lo) >= 100 else f"{v:.4g}"))  # type: ignore[operator]
    return out


def drift_chart(
    title: str,
    times: Sequence[str],
    means: Sequence[float],
    stds: Sequence[float],
    ref_mean: float | None,
    ref_std: float | None,
    threshold: float,
    keys: Sequence[str] = (),
) -> LineChart:
    """`threshold`: the shift alert, in reference standard deviations of the mean (server/drift.py)."""
    ch = LineChart(title)
    if not means:
        return ch
    vals = [m - s for m, s in zip(means, stds, strict=True)] + [m + s for m, s in zip(means, stds, strict=True)]
    if ref_mean is not None and ref_std is not None:
        vals += [ref_mean - threshold * ref_std, ref_mean + threshold * ref_std]
    lo, hi = _scale(min(vals), max(vals))
    n = len(means)

    def x(i: int) -> float:
        return PAD_L + (W - PAD_L - PAD_R) * (i / (n - 1) if n > 1 else 0.5)

    def y(v: float) -> float:
        return PAD_T + (H - PAD_T - PAD_B) * (1 - (v - lo) / (hi - lo))

    ch.points = [Point(x(i), y(m), m, f"{times[i]}: mean {m:.3f}, std {s:.3f}", keys[i] if keys else "")
                 for i, (m, s) in enumerate(zip(means, stds, strict=True))]  # fmt: skip
    upper = [f"{x(i):.1f},{y(m + s):.1f}" for i, (m, s) in enumerate(zip(means, stds, strict=True))]
    lower = [f"{x(i):.1f},{y(m - s):.1f}" for i, (m, s) in enumerate(zip(means, stds, strict=True))]
    ch.band = " ".join(upper + lower[::-1])
    if ref_mean is not None and ref_std is not None:
        ch.lines = [
            HLine(y(ref_mean), ref_mean, f"reference mean {ref_mean:.3f}"),
            HLine(y(ref_mean + threshold * ref_std), ref_mean + threshold * ref_std,
                  f"alert above {ref_mean + threshold * ref_std:.3f}"),
            HLine(y(ref_mean - threshold * ref_std), ref_mean - threshold * ref_std,
                  f"alert below {ref_mean - threshold * ref_std:.3f}"),
        ]  # fmt: skip
    ch.ticks = _ticks(lo, hi, y)
    return ch


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    value: float
    label: str


@dataclass
class BarChart:
    title: str
    bars: list[Bar] = field(default_factory=list)
    width: int = W
    height: int = 160
    limit: HLine | None = None  # a vertical limit for horizontal bars, drawn at x = limit.y


def histogram(title: str, counts: Sequence[int], labels: Sequence[str]) -> BarChart:
    ch = BarChart(title, height=H)
    if not counts:
        return ch
    top = max(max(counts), 1)
    n = len(counts)
    bw = (W - PAD_L - PAD_R) / n
    inner = ch.height - PAD_T - PAD_B
    for i, c in enumerate(counts):
        h = inner * c / top
        ch.bars.append(Bar(PAD_L + i * bw + 1, PAD_T + inner - h, max(bw - 2, 1), h, c, f"{labels[i]}: {c}"))
    return ch


def hbars(title: str, items: Sequence[tuple[str, float]], limit: float | None, scale_max: float = 0.0) -> BarChart:
    """Horizontal bars (label, value), e.g. per-layer saturation against its maximum."""
    ch = BarChart(title, height=PAD_T + PAD_B + 22 * max(len(items), 1))
    top = max([v for _, v in items] + [limit or 0.0, scale_max, 1e-9])
    span = W - 200 - PAD_R
    for i, (label, v) in enumerate(items):
        ch.bars.append(Bar(200, PAD_T + i * 22, max(span * v / top, 1), 16, v, label))
    if limit is not None:
        ch.limit = HLine(200 + span * limit / top, limit, f"max {limit:g}")
    return ch


def series(title: str, times: Sequence[str], values: Sequence[float], limit: float | None, unit: str) -> LineChart:
    """One figure over time (e.g. latency p99) with its limit drawn."""
    ch = LineChart(title)
    if not values:
        return ch
    lo, hi = _scale(min([*values, *([limit] if limit is not None else [])]),
                    max([*values, *([limit] if limit is not None else [])]))  # fmt: skip
    n = len(values)

    def x(i: int) -> float:
        return PAD_L + (W - PAD_L - PAD_R) * (i / (n - 1) if n > 1 else 0.5)

    def y(v: float) -> float:
        return PAD_T + (H - PAD_T - PAD_B) * (1 - (v - lo) / (hi - lo))

    ch.points = [Point(x(i), y(v), v, f"{times[i]}: {v:g} {unit}") for i, v in enumerate(values)]
    if limit is not None:
        ch.lines = [HLine(y(limit), limit, f"limit {limit:g} {unit}")]
    ch.ticks = _ticks(lo, hi, y)
    return ch
