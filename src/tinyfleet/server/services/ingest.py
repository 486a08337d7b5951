"""Applying device messages (state reports, telemetry, presence) to the database, idempotently.

A report is keyed by (device, (epoch << 32) | seq): a duplicate is dropped, an older one is stored but never
overwrites the device's newer state, and a rollout outcome is taken from a report's content (the
desired_seq the rollout issued, the digest it runs), so duplicated, reordered or late QoS 1 deliveries
cannot change a rollout's counts. Telemetry is keyed the same way by its window sequence number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, select

from tinyfleet.protocol.codes import REASON_NAMES
from tinyfleet.protocol.records import (
    IMAGE_STATES,
    ZERO_DIGEST,
    Presence,
    StateReport,
    Telemetry,
)
from tinyfleet.server.db.models import (
    Bundle,
    Device,
    DeviceReport,
    DriftScore,
    Rollout,
    RolloutDevice,
    TelemetryAggregate,
    TelemetryRecord,
)
from tinyfleet.server.drift import Baseline, device_drift, mean_shift, observed_std_q8
from tinyfleet.server.rollouts import device_states
from tinyfleet.server.rollouts.states import ACTIVE
from tinyfleet.server.services.rollouts import set_status


@dataclass
class IngestResult:
    reports: int = 0
    duplicates: int = 0
    telemetry: int = 0
    presence: int = 0
    unknown_device: int = 0
    outcomes: list[tuple[str, int, str]] = field(default_factory=list)  # (device, rollout, status)
    lags: list[float] = field(default_factory=list)


# What `prefetch` read for one transaction, kept in its session.info: the rows a batch of messages touches are
# read with one query each, not one per message.
_BUNDLE_REFS, _REPORT_KEYS, _ASSIGNED = "tinyfleet.bundle_refs", "tinyfleet.report_keys", "tinyfleet.assigned"
_DEVICES = "tinyfleet.devices"


def prefetch(
    session: Session, device_ids: list[str], report_keys: list[tuple[str, int]], outcome_ids: list[str]
) -> None:
    """Read, for a batch of messages from these devices, with one query each: the devices, which of these
    (device, report order) keys are stored already, and the entry in an active rollout that waits for the
    install of each device in `outcome_ids` (those with a report or a presence in the batch; locked on
    PostgreSQL, as `_assigned_in_active_rollout` locks it). The batch is then applied from the session."""
    ids = sorted(set(device_ids))
    if not ids:
        return
    # Held in session.info for the batch: the identity map keeps unchanged objects only by weak reference, so
    # rows read and dropped would be read again, one query per Session.get.
    session.info[_DEVICES] = list(session.exec(select(Device).where(col(Device.id).in_(ids))))
    known: set[tuple[str, int]] = set()
    if report_keys:
        seqs = sorted({q for _d, q in report_keys})
        rows = session.exec(
            select(DeviceReport.device_id, DeviceReport.seq).where(
                col(DeviceReport.device_id).in_(ids), col(DeviceReport.seq).in_(seqs)
            )
        )
        known = {(d, q) for d, q in rows}
    session.info[_REPORT_KEYS] = known
    waiting = sorted(set(outcome_ids))
    assigned: dict[str, tuple[RolloutDevice, Rollout] | None] = dict.fromkeys(waiting)
    if waiting:
        q = _assigned_query().where(col(RolloutDevice.device_id).in_(waiting)).order_by(col(RolloutDevice.id))
        for rd, ro in session.exec(q):
            assigned[rd.device_id] = (rd, ro)
    session.info[_ASSIGNED] = assigned


def bundle_ref(session: Session, digest: bytes) -> str | None:
    """The bundle id for a digest the server knows, else the digest's hex (so aggregates still key). Kept for
    the session's transaction: a digest names the same bundle for good."""
    if digest == ZERO_DIGEST:
        return None
    hexd = digest.hex()
    refs: dict[str, str] = session.info.setdefault(_BUNDLE_REFS, {})
    if hexd not in refs:
        row = session.exec(select(Bundle.bundle_id).where(Bundle.digest == hexd)).first()
        refs[hexd] = row if row is not None else hexd
    return refs[hexd]


def _report_stored(session: Session, device_id: str, order: int) -> bool:
    known: set[tuple[str, int]] | None = session.info.get(_REPORT_KEYS)
    if known is not None and device_id in session.info[_ASSIGNED]:  # prefetched with its batch's report keys
        return (device_id, order) in known
    dup = session.exec(
        select(DeviceReport.id).where(DeviceReport.device_id == device_id, DeviceReport.seq == order)
    ).first()
    return dup is not None


def apply_report(session: Session, device_id: str, r: StateReport, now: float, res: IngestResult) -> None:
    dev = session.get(Device, device_id)
    if dev is None:
        res.unknown_device += 1
        return
    if _report_stored(session, device_id, r.order):
        res.duplicates += 1
        return
    known: set[tuple[str, int]] | None = session.info.get(_REPORT_KEYS)
    if known is not None:
        known.add((device_id, r.order))
    reason = REASON_NAMES.get(r.reason, f"Reason{r.reason}") if r.reason else None
    session.add(
        DeviceReport(
            device_id=device_id,
            seq=r.order,
            received_at=now,
            bundle_id=bundle_ref(session, r.target_digest),
            state=r.to_state_name,
            reason=reason,
            payload={
                "from": r.from_state,
                "to": r.to_state,
                "event": r.event,
                "desired_seq": r.desired_seq,
                "running": r.running_digest.hex(),
                "detail": [r.detail0, r.detail1],
                "device_time": r.device_time,
            },
        )
    )
    res.reports += 1
    dev.last_seen, dev.online = now, True  # any message is a sign of life (services/presence.py)
    if r.order > dev.last_report_seq:
        prev = dev.last_report_seq
        if prev >= 0 and r.epoch == prev >> 32 and r.seq > (prev & 0xFFFFFFFF) + 1:
            dev.report_gaps += r.seq - (prev & 0xFFFFFFFF) - 1
        dev.last_report_seq = r.order
        dev.state = r.to_state_name
        dev.state_reason = reason
        if r.running_digest != ZERO_DIGEST:
            dev.running_digest = r.running_digest.hex()
            dev.running_bundle = bundle_ref(session, r.running_digest)
    session.add(dev)
    _rollout_outcome(session, dev, r, now, res)


def _assigned_in_active_rollout(session: Session, dev: Device) -> tuple[RolloutDevice, Rollout] | None:
    """The device's entry in a running or paused rollout that is waiting for its install, if any. Locked (on
    PostgreSQL): a rollout step that halted meanwhile has moved it on, and the entry no longer matches, so a
    late outcome neither overwrites the rollback nor changes what the halt counted."""
    prefetched: dict[str, tuple[RolloutDevice, Rollout] | None] = session.info.get(_ASSIGNED, {})
    if dev.id in prefetched:
        row = prefetched[dev.id]  # the same rows, held since `prefetch`: an outcome applied since moved it on
        return row if row is not None and row[0].status == "assigned" else None
    return session.exec(_assigned_query().where(RolloutDevice.device_id == dev.id)).first()


def _assigned_query() -> Any:
    return (
        select(RolloutDevice, Rollout)
        .join(Rollout, col(Rollout.id) == col(RolloutDevice.rollout_id))
        .where(RolloutDevice.status == "assigned", col(Rollout.state).in_(ACTIVE))
        .with_for_update(of=RolloutDevice)
    )


def _rollout_outcome(session: Session, dev: Device, r: StateReport, now: float, res: IngestResult) -> None:
    row = _assigned_in_active_rollout(session, dev)
    if row is None:
        return
    rd, ro = row
    bundle = session.get(Bundle, ro.bundle_id)
    assert bundle is not None
    outcome = device_states.report_event(r, rd.desired_seq, bytes.fromhex(bundle.digest))
    if outcome is None or not set_status(rd, outcome[0], outcome[1], now):
        return
    session.add(rd)
    res.outcomes.append((dev.id, ro.id or 0, rd.status))


def _baselines(bundle: Bundle | None) -> list[Baseline]:
    if bundle is None:
        return []
    chans = bundle.manifest.get("calibration", {}).get("channels", [])
    return [Baseline(c["offset"], c["gain_q16"], c["baseline_mean_q8"], c["baseline_std_q8"]) for c in chans]


def apply_telemetry(
    session: Session, device_id: str, t: Telemetry, now: float, drift_threshold: float, res: IngestResult,
    shift_threshold: float = 1.0,
) -> None:
    apply_telemetry_batch(session, [(device_id, t)], now, drift_threshold, res, shift_threshold)


def apply_telemetry_batch(
    session: Session, items: list[tuple[str, Telemetry]], now: float, drift_threshold: float, res: IngestResult,
    shift_threshold: float = 1.0,
) -> None:
    """Store a batch of telemetry windows with a fixed number of queries, whatever the batch size: one read
    each for devices, known duplicates, bundles, aggregates and drift scores, then one bulk insert."""
    if not items:
        return
    ids = sorted({d for d, _ in items})
    devs = {d.id: d for d in session.exec(select(Device).where(col(Device.id).in_(ids)))}
    seen = {
        (d, q)
        for d, q in session.exec(
            select(TelemetryRecord.device_id, TelemetryRecord.seq).where(
                col(TelemetryRecord.device_id).in_(ids),
                col(TelemetryRecord.seq).in_(sorted({t.order for _, t in items})),
            )
        )
    }
    digests = sorted({t.running_digest.hex() for _, t in items if t.running_digest != ZERO_DIGEST})
    by_digest = {b.digest: b for b in session.exec(select(Bundle).where(col(Bundle.digest).in_(digests)))}

    def ref_of(t: Telemetry) -> str:
        if t.running_digest == ZERO_DIGEST:
            return "none"
        hexd = t.running_digest.hex()
        return by_digest[hexd].bundle_id if hexd in by_digest else hexd

    rows: list[dict[str, Any]] = []
    fresh: list[tuple[str, Telemetry, str]] = []
    for dev_id, t in items:
        if dev_id not in devs:
            res.unknown_device += 1
            continue
        if (dev_id, t.order) in seen:
            res.duplicates += 1
            continue
        seen.add((dev_id, t.order))
        ref = ref_of(t)
        fresh.append((dev_id, t, ref))
        rows.append(
            {
                "device_id": dev_id,
                "seq": t.order,
                "received_at": now,
                "bundle_id": ref,
                "samples": t.sample_count,
                "inferences": t.inference_count,
                "alarms": t.alarm_count,
                "payload": {
                    "window_start": t.window_start,
                    "window_len_s": t.window_len_s,
                    "uncertain": t.uncertain_count,
                    "latency_p99_us": t.latency_p99_us,
                    "latency_max_us": t.latency_max_us,
                    "temp_q8": [t.temp_min_q8, t.temp_max_q8, t.temp_mean_q8],
                    "hist": list(t.confidence_hist),
                    "channels": [[c.mean_q8, c.var_q8] for c in t.channels],
                },
            }
        )
        if t.window_start:
            res.lags.append(max(0.0, now - (t.window_start + t.window_len_s)))
    if not rows:
        return
    session.execute(insert(TelemetryRecord), rows)
    res.telemetry += len(rows)

    aggs = {
        (a.device_id, a.bundle_id): a
        for a in session.exec(select(TelemetryAggregate).where(col(TelemetryAggregate.device_id).in_(ids)))
    }
    latest: dict[str, tuple[Telemetry, str]] = {}
    for dev_id, t, ref in fresh:
        agg = aggs.get((dev_id, ref))
        if agg is None:
            agg = aggs[(dev_id, ref)] = TelemetryAggregate(device_id=dev_id, bundle_id=ref)
        _accumulate(agg, t, now)
        devs[dev_id].last_seen, devs[dev_id].online = now, True
        if dev_id not in latest or t.order > latest[dev_id][0].order:
            latest[dev_id] = (t, ref)
    for agg in aggs.values():
        if agg.updated_at == now:
            session.add(agg)
    for dev_id in latest:
        session.add(devs[dev_id])
    _update_drift(session, latest, {b.bundle_id: b for b in by_digest.values()}, now, drift_threshold, shift_threshold)


def _accumulate(agg: TelemetryAggregate, t: Telemetry, now: float) -> None:
    agg.windows += 1
    agg.samples += t.sample_count
    agg.inferences += t.inference_count
    agg.alarms += t.alarm_count
    hist = list(agg.confidence_hist) or [0] * len(t.confidence_hist)
    agg.confidence_hist = [a + b for a, b in zip(hist, t.confidence_hist, strict=False)]
    chans = [dict(c) for c in agg.channels]
    n = t.sample_count
    for i, c in enumerate(t.channels):
        if i >= len(chans):
            chans.append({"n": 0.0, "sum": 0.0, "sumsq": 0.0})
        mean, var = c.mean_q8 / 256, c.var_q8 / 256  # var_q8 is the variance x 256 (device-protocol.md)
        chans[i] = {"n": chans[i]["n"] + n, "sum": chans[i]["sum"] + n * mean,
                    "sumsq": chans[i]["sumsq"] + n * (var + mean * mean)}  # fmt: skip
    agg.channels = chans
    agg.updated_at = now


def _update_drift(
    session: Session,
    latest: dict[str, tuple[Telemetry, str]],
    bundles: dict[str, Bundle],
    now: float,
    threshold: float,
    shift_threshold: float,
) -> None:
    """Drift of each device's newest window in the batch against its bundle's calibration baseline."""
    scores = {
        d.device_id: d for d in session.exec(select(DriftScore).where(col(DriftScore.device_id).in_(list(latest))))
    }
    for dev_id, (t, ref) in latest.items():
        baselines = _baselines(bundles.get(ref))
        if not baselines or not t.channels or not t.sample_count:
            continue
        score, per = device_drift([(c.mean_q8, c.var_q8) for c in t.channels], baselines)
        window = [(c.mean_q8 / 256, observed_std_q8(c.var_q8) / 256) for c in t.channels]
        ds = scores.get(dev_id)
        if ds is None or ds.bundle_id != ref or len(ds.reference) != len(window):  # a new reference window
            ds = ds or DriftScore(device_id=dev_id, bundle_id=ref, computed_at=now, score=score)
            ds.reference = [{"mean": m, "std": s} for m, s in window]
        ds.shift = mean_shift([(r["mean"], r["std"]) for r in ds.reference], window)
        ds.shift_alert = ds.shift > shift_threshold
        ds.bundle_id, ds.computed_at, ds.score, ds.alert = ref, now, score, score > threshold
        ds.channels = [
            {"mean": c.mean, "std": c.std, "base_mean": c.base_mean, "base_std": c.base_std, "score": c.score,
             "mean_q8": m.mean_q8, "var_q8": m.var_q8}
            for c, m in zip(per, t.channels, strict=False)
        ]  # fmt: skip
        session.add(ds)


def apply_presence(
    session: Session, device_id: str, p: Presence, now: float, res: IngestResult, live: bool = True
) -> None:
    """`live` False: the broker replayed its retained copy (on the server's subscribe), which may be hours old
    and from a device that is gone since; it updates what the device runs but is no sign of life."""
    dev = session.get(Device, device_id)
    if dev is None:
        res.unknown_device += 1
        return
    dev.online = p.status == 1
    if live:
        dev.last_seen = now
    dev.image_state = IMAGE_STATES.get(p.image_state)
    dev.security_counter = p.security_counter
    if p.running_digest != ZERO_DIGEST and (p.epoch << 32 | p.last_seq) >= dev.last_report_seq:
        dev.running_digest = p.running_digest.hex()
        dev.running_bundle = bundle_ref(session, p.running_digest)
    session.add(dev)
    res.presence += 1
    if live and p.image_state == 1 and p.running_digest != ZERO_DIGEST:
        _converged(session, dev, p.running_digest, now, res)


def _converged(session: Session, dev: Device, running: bytes, now: float, res: IngestResult) -> None:
    """Presence says the device runs, confirmed, the bundle its rollout assigned: the install succeeded even
    if the reports saying so were lost (docs/device-protocol.md, "Convergence")."""
    row = _assigned_in_active_rollout(session, dev)
    if row is None:
        return
    rd, ro = row
    bundle = session.get(Bundle, ro.bundle_id)
    if bundle is None or bytes.fromhex(bundle.digest) != running:
        return
    rd.status, rd.reason, rd.finished_at = "succeeded", "confirmed (from presence)", now
    session.add(rd)
    res.outcomes.append((dev.id, ro.id or 0, rd.status))
