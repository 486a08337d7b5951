"""Per-cohort telemetry: the per-device aggregates summed over devices that share a bundle and tag values."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlmodel import Session, col, or_, select

from tinyfleet.server.db.models import Device, DriftScore, TelemetryAggregate
from tinyfleet.server.services.errors import BadRequest


@dataclass
class Cohort:
    bundle_id: str
    cohort: dict[str, str]
    devices: int = 0
    windows: int = 0
    inferences: int = 0
    alarms: int = 0
    confidence_hist: list[int] = field(default_factory=list)
    channels: list[dict[str, float]] = field(default_factory=list)  # n, sum, sumsq while summing
    drift_alerts: int = 0
    max_drift: float | None = None

    @property
    def alarm_rate(self) -> float:
        return self.alarms / self.inferences if self.inferences else 0.0

    def channel_stats(self) -> list[dict[str, float]]:
        out = []
        for c in self.channels:
            n = c["n"]
            mean = c["sum"] / n if n else 0.0
            var = max(0.0, c["sumsq"] / n - mean * mean) if n else 0.0
            out.append({"samples": n, "mean": mean, "std": math.sqrt(var)})
        return out


def cohorts(session: Session, bundle_id: str | None, by: Sequence[str]) -> list[Cohort]:
    q = select(TelemetryAggregate)
    if bundle_id:
        q = q.where(TelemetryAggregate.bundle_id == bundle_id)
    tags = {d.id: d.tags for d in session.exec(select(Device))}
    drift = {d.device_id: d for d in session.exec(select(DriftScore))}
    groups: dict[tuple[str, tuple[str, ...]], Cohort] = {}
    for a in session.exec(q):
        values = tuple(tags.get(a.device_id, {}).get(k, "-") for k in by)
        c = groups.get((a.bundle_id, values))
        if c is None:
            c = groups[(a.bundle_id, values)] = Cohort(a.bundle_id, dict(zip(by, values, strict=True)))
        c.devices += 1
        c.windows += a.windows
        c.inferences += a.inferences
        c.alarms += a.alarms
        if not c.confidence_hist:
            c.confidence_hist = [0] * len(a.confidence_hist)
        c.confidence_hist = [x + y for x, y in zip(c.confidence_hist, a.confidence_hist, strict=False)]
        for i, ch in enumerate(a.channels):
            if i >= len(c.channels):
                c.channels.append({"n": 0.0, "sum": 0.0, "sumsq": 0.0})
            for k in ("n", "sum", "sumsq"):
                c.channels[i][k] += ch[k]
        ds = drift.get(a.device_id)
        if ds is not None and ds.bundle_id == a.bundle_id:
            c.drift_alerts += int(ds.alert)
            c.max_drift = ds.score if c.max_drift is None else max(c.max_drift, ds.score)
    return sorted(groups.values(), key=lambda c: (c.bundle_id, tuple(c.cohort.values())))


@dataclass(frozen=True)
class FlaggedDevice:
    device_id: str
    hardware_class: str
    bundle_id: str
    cohort: str  # "name=value" of the cohort tag, "all" without one
    score: float
    shift: float
    alert: bool
    shift_alert: bool
    computed_at: float


FLAGGED_SORTS = ("shift", "score", "device", "cohort")


def flagged(session: Session, by: str | None = None, sort: str = "shift", descending: bool = True,
            limit: int = 1000) -> list[FlaggedDevice]:  # fmt: skip
    """Devices whose drift score or shift from their own reference alerts, with their cohort (the value of the
    tag `by`), sorted in SQL by `sort` (FLAGGED_SORTS) and then by device id."""
    if sort not in FLAGGED_SORTS:
        raise BadRequest(f"sort {sort!r} is not one of {', '.join(FLAGGED_SORTS)}")
    cohort = col(Device.tags)[by].as_string() if by else None
    key = {"shift": col(DriftScore.shift), "score": col(DriftScore.score), "device": col(Device.id),
           "cohort": cohort if cohort is not None else col(Device.id)}[sort]  # fmt: skip
    q = (select(DriftScore, Device).join(Device, col(Device.id) == col(DriftScore.device_id))
         .where(or_(col(DriftScore.alert), col(DriftScore.shift_alert)))
         .order_by(key.desc() if descending else key.asc(), col(Device.id)).limit(limit))  # fmt: skip
    return [
        FlaggedDevice(d.id, d.hardware_class, ds.bundle_id, f"{by}={d.tags.get(by, '-')}" if by else "all",
                      ds.score, ds.shift, ds.alert, ds.shift_alert, ds.computed_at)
        for ds, d in session.exec(q)
    ]  # fmt: skip


def tag_names(session: Session) -> list[str]:
    """Every tag name in use (for choosing a cohort)."""
    return sorted({k for tags in session.exec(select(Device.tags)).all() for k in tags})
