"""Ingest applied directly to a database: idempotence, ordering, gaps, convergence from presence, retention."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, func, select

from tinyfleet.protocol.records import ChannelStats, Presence, StateReport, Telemetry
from tinyfleet.server.db import migrate
from tinyfleet.server.db.models import Bundle, Device, DeviceReport, Rollout, RolloutDevice, TelemetryAggregate
from tinyfleet.server.db.models import TelemetryRecord as TR
from tinyfleet.server.services.ingest import IngestResult, apply_presence, apply_report, apply_telemetry, prefetch
from tinyfleet.server.services.retention import purge_telemetry

NEW = hashlib.sha256(b"new").digest()
OLD = hashlib.sha256(b"old").digest()
HIST = (1,) * 16


def _seed(engine: Engine) -> None:
    migrate.upgrade(engine)
    with Session(engine) as s:
        s.add(Device(id="d1", hardware_class="stm32l4", created_at=0, broker_password_hash="h"))
        for bid, dg in (("old", OLD), ("new", NEW)):
            s.add(
                Bundle(
                    bundle_id=bid,
                    digest=dg.hex(),
                    hardware_class="stm32l4",
                    security_counter=1,
                    created=0,
                    size=100,
                    payload_offset=64,
                    uploaded_at=0,
                    uploaded_by="t",
                    status="published",
                    manifest={
                        "calibration": {
                            "sample_rate_hz": 1,
                            "channels": [
                                {"offset": 0, "gain_q16": 65536, "baseline_mean_q8": 0, "baseline_std_q8": 256}
                            ],
                        }
                    },
                )
            )
        s.add(Rollout(id=1, bundle_id="new", state="running", created_at=0, updated_at=0, created_by="t"))
        s.add(RolloutDevice(rollout_id=1, device_id="d1", stratum="all", stage=0, status="assigned", desired_seq=3))
        s.commit()  # fmt: skip


def rep(seq: int, to: int, reason: int = 0, running: bytes = OLD, epoch: int = 1, dseq: int = 3) -> StateReport:
    return StateReport(0, to, 2, epoch, seq, reason, dseq, NEW, running, 0, 0, 0)


# prefetched: the ingest worker's way, the batch's rows read up front (services.ingest.prefetch); the answers
# must be those of applying each message on its own.
@pytest.mark.parametrize("prefetched", [False, True])
def test_reports_are_idempotent_and_order_safe(engine: Engine, prefetched: bool) -> None:
    _seed(engine)
    reports = [rep(1, 2), rep(2, 4), rep(4, 6, running=NEW), rep(5, 1, 99, running=NEW)]  # seq 3 lost
    res = IngestResult()
    with Session(engine) as s:
        if prefetched:
            prefetch(s, ["d1"], [("d1", r.order) for r in [*reports, rep(3, 5)]], ["d1"])
        for r in reports + reports[::-1]:  # everything twice, the second time in reverse
            apply_report(s, "d1", r, 10.0, res)
        apply_report(s, "d1", rep(3, 5), 11.0, res)  # the lost one arrives late
        s.commit()
        dev = s.get(Device, "d1")
        rd = s.exec(select(RolloutDevice)).one()
        assert (res.reports, res.duplicates) == (5, 4)
        assert dev.state == "IDLE" and dev.running_bundle == "new" and dev.last_report_seq == (1 << 32) | 5
        assert dev.report_gaps == 1
        assert (rd.status, rd.reason) == ("succeeded", "Confirmed") and res.outcomes == [("d1", 1, "succeeded")]
        assert s.exec(select(func.count()).select_from(DeviceReport)).one() == 5


def test_health_failure_for_another_desired_seq_is_ignored_then_counted(engine: Engine) -> None:
    _seed(engine)
    res = IngestResult()
    with Session(engine) as s:
        apply_report(s, "d1", rep(1, 5, 64, dseq=2), 1.0, res)  # about an older desired state
        assert s.exec(select(RolloutDevice)).one().status == "assigned"
        apply_report(s, "d1", rep(2, 5, 64), 2.0, res)
        rd = s.exec(select(RolloutDevice)).one()
        assert (rd.status, rd.reason) == ("failed", "HealthOutputMismatch")


@pytest.mark.parametrize("prefetched", [False, True])
def test_presence_converges_when_reports_were_lost(engine: Engine, prefetched: bool) -> None:
    _seed(engine)
    res = IngestResult()
    with Session(engine) as s:
        if prefetched:
            prefetch(s, ["d1"], [], ["d1"])
        apply_presence(s, "d1", Presence(1, 2, 2, 0, NEW, "stm32l4", 1 << 20, 1, 0), 1.0, res)  # trial: not yet
        assert s.exec(select(RolloutDevice)).one().status == "assigned"
        apply_presence(s, "d1", Presence(1, 1, 2, 3, NEW, "stm32l4", 1 << 20, 1, 0), 2.0, res)
        assert s.exec(select(RolloutDevice)).one().status == "succeeded"
        assert s.get(Device, "d1").online is True


def test_telemetry_aggregates_drift_and_retention(engine: Engine) -> None:
    _seed(engine)
    res = IngestResult()
    with Session(engine) as s:
        for w in (1, 2, 2):
            t = Telemetry(1, w, 0, 60, 100, 50, 5, 0, 0, 0, 0, 0, 0, NEW, HIST, (ChannelStats(512, 256 * 4),))
            apply_telemetry(s, "d1", t, 100.0 * w, 1.0, res)
        s.commit()
        agg = s.get(TelemetryAggregate, ("d1", "new"))
        assert (agg.windows, agg.inferences, agg.alarms, agg.confidence_hist) == (2, 100, 10, [2] * 16)
        assert res.duplicates == 1
        from tinyfleet.server.db.models import DriftScore

        ds = s.get(DriftScore, "d1")  # mean 2 units vs baseline 0 +- 1: shift 2 + ln(2/1)
        assert abs(ds.score - (2 + 0.6931)) < 1e-3 and ds.alert
        assert purge_telemetry(s, now=250.0, retention_s=100.0) == 1
        assert s.exec(select(func.count()).select_from(TR)).one() == 1
        assert s.get(TelemetryAggregate, ("d1", "new")).windows == 2


def test_drift_shift_is_measured_from_the_devices_first_window_on_its_bundle(engine: Engine) -> None:
    from tinyfleet.server.db.models import DriftScore

    _seed(engine)
    res = IngestResult()

    def window(seq: int, mean_q8: int, var_q8: int, running: bytes = NEW) -> None:
        t = Telemetry(1, seq, 0, 60, 100, 50, 5, 0, 0, 0, 0, 0, 0, running, HIST, (ChannelStats(mean_q8, var_q8),))
        with Session(engine) as s:
            apply_telemetry(s, "d1", t, float(seq), 1.0, res)
            s.commit()

    def drift() -> DriftScore:
        with Session(engine) as s:
            ds = s.get(DriftScore, "d1")
            assert ds is not None
            return ds

    window(1, 512, 256 * 4)  # mean 2, std 2: the reference
    assert (drift().reference, drift().shift) == ([{"mean": 2.0, "std": 2.0}], 0.0)
    window(2, 512 + 256, 256 * 9)  # mean 3 (std 3): half a reference std
    assert drift().shift == 0.5 and drift().reference == [{"mean": 2.0, "std": 2.0}]
    assert not drift().shift_alert
    window(3, 512 - 6 * 256, 256 * 4)  # mean -4
    assert drift().shift == 3.0 and drift().shift_alert  # above drift_shift_threshold (1.0 by default)
    window(4, 10 * 256, 256 * 1, running=OLD)  # another bundle: its first window is the new reference
    assert (drift().bundle_id, drift().reference, drift().shift) == ("old", [{"mean": 10.0, "std": 1.0}], 0.0)
    assert not drift().shift_alert


def test_cohorts_sum_devices_by_bundle_and_tags(engine: Engine) -> None:
    from tinyfleet.server.services.cohorts import cohorts

    _seed(engine)
    res = IngestResult()
    with Session(engine) as s:
        s.add(Device(id="d2", hardware_class="stm32l4", tags={"site": "b"}, created_at=0, broker_password_hash="h"))
        s.get(Device, "d1").tags = {"site": "a"}
        s.commit()
        for dev, alarms in (("d1", 5), ("d2", 15)):
            t = Telemetry(1, 1, 0, 60, 100, 50, alarms, 0, 0, 0, 0, 0, 0, NEW, HIST, (ChannelStats(512, 1024),))
            apply_telemetry(s, dev, t, 1.0, 10.0, res)
        s.commit()
        (everyone,) = cohorts(s, "new", [])
        assert (everyone.devices, everyone.inferences, everyone.alarm_rate) == (2, 100, 0.2)
        assert everyone.confidence_hist == [2] * 16
        assert everyone.channel_stats()[0] == {"samples": 200, "mean": 2.0, "std": 2.0}
        by_site = cohorts(s, None, ["site"])
        assert [(c.cohort, c.alarm_rate) for c in by_site] == [({"site": "a"}, 0.1), ({"site": "b"}, 0.3)]
