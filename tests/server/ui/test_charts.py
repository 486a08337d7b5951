"""Chart geometry (pure): values to SVG coordinates."""

from __future__ import annotations

from tinyfleet.server.ui import charts


def test_drift_chart_maps_means_spread_reference_and_threshold() -> None:
    ch = charts.drift_chart("ch 0", ["t0", "t1", "t2"], [1.0, 2.0, 3.0], [0.5, 0.5, 0.5], 1.0, 0.5, 2.0,
                            ["1:1", "1:2", "1:3"])  # fmt: skip
    xs, ys = [p.x for p in ch.points], [p.y for p in ch.points]
    assert xs == sorted(xs) and xs[0] == charts.PAD_L and xs[-1] == charts.W - charts.PAD_R
    assert ys == sorted(ys, reverse=True)  # a larger mean is drawn higher (smaller y)
    assert [p.key for p in ch.points] == ["1:1", "1:2", "1:3"] and [p.value for p in ch.points] == [1.0, 2.0, 3.0]
    ref, upper, lower = ch.lines
    assert (ref.value, upper.value, lower.value) == (1.0, 2.0, 0.0)  # reference +- 2 reference stds
    assert upper.y < ref.y < lower.y
    assert all(charts.PAD_T <= y <= charts.H - charts.PAD_B for y in [*ys, upper.y, lower.y])
    assert len(ch.band.split()) == 6  # upper edge there, lower edge back


def test_empty_and_flat_series_do_not_divide_by_zero() -> None:
    assert charts.drift_chart("x", [], [], [], None, None, 1.0).points == []
    flat = charts.drift_chart("x", ["a", "b"], [5.0, 5.0], [0.0, 0.0], None, None, 1.0)
    assert flat.points[0].y == flat.points[1].y and not flat.lines
    assert charts.series("p99", ["a"], [100.0], 50_000.0, "us").lines[0].value == 50_000.0


def test_bars_scale_to_the_largest_value_or_the_limit() -> None:
    h = charts.histogram("conf", [0, 5, 10], ["0", "1", "2"])
    assert [b.h for b in h.bars][0] == 0 and h.bars[2].h == 2 * h.bars[1].h
    s = charts.hbars("sat", [("conv", 0.01), ("fc", 0.0)], 0.02)
    assert s.limit is not None and s.bars[0].w < s.limit.y - 200
