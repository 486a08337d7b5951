"""Drift end to end: telemetry from a scripted device, the alert, the cohort view and the calibration proposal."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinyfleet.bundles import Calibration
from tinyfleet.bundles.components import ChannelCalibration

from ..srv_bundles import CAL, make_bundle
from ..srv_fleet import Fleet, wait_until


@pytest.fixture
def fleet(tmp_path: Path, db_url: str):
    f = Fleet(tmp_path, db_url)
    yield f
    f.close()


def test_drifted_sensor_alerts_and_gets_a_calibration_proposal(fleet: Fleet) -> None:
    with fleet.server() as (http, rt):
        v1 = make_bundle(fleet.key, "cal-1", counter=4)
        fleet.upload(http, v1)
        fleet.provision(http, "s1", "stm32l4", {"site": "a"})
        dev = fleet.start_device(rt.broker_port, "s1", "stm32l4", v1)
        # CAL: channel 0 baseline 100 +- 20, channel 1 baseline 0 +- 10 (calibrated units; gain 1.0 on channel 0)
        dev.telemetry(100, 3, (0,) * 15 + (100,), [(140 * 256, 400 * 256), (0, 100 * 256)])
        assert wait_until(lambda: http.get("/api/v1/drift", params={"alert_only": "true"}).json() != [])
        (d,) = http.get("/api/v1/drift", params={"alert_only": "true"}).json()
        assert d["device_id"] == "s1" and d["bundle_id"] == "cal-1" and abs(d["score"] - 2.0) < 1e-6
        # its first window is its reference: no shift yet; a second window 30 units further moves it 1.5 stds
        assert d["reference"] == [{"mean": 140.0, "std": 20.0}, {"mean": 0.0, "std": 10.0}] and d["shift"] == 0.0
        assert http.get("/api/v1/drift", params={"shift_alert_only": "true"}).json() == []
        dev.telemetry(100, 3, (0,) * 15 + (100,), [(170 * 256, 400 * 256), (0, 100 * 256)])
        assert wait_until(lambda: http.get("/api/v1/drift", params={"shift_alert_only": "true"}).json() != [])
        (d,) = http.get("/api/v1/drift", params={"shift_alert_only": "true"}).json()
        assert d["shift"] == 1.5 and d["shift_alert"] and d["reference"][0] == {"mean": 140.0, "std": 20.0}
        # by default the proposal undoes what changed since the reference window: 30 more units of offset on
        # channel 0, channel 1 (offset 5, unchanged input) as it was
        p = http.get("/api/v1/drift/s1/calibration-proposal").json()
        assert p["against"] == "reference" and p["target"] == [{"mean": 140.0, "std": 20.0}, {"mean": 0.0, "std": 10.0}]
        assert [(c["offset"], c["gain_q16"]) for c in p["calibration"]["channels"]] == [(30, 65536), (5, 65536)]
        r = http.get("/api/v1/drift/s1/calibration-proposal", params={"against": "population"})
        assert r.status_code == 422 and "against" in r.json()["detail"]
        dev.telemetry(100, 3, (0,) * 15 + (100,), [(140 * 256, 400 * 256), (0, 100 * 256)])  # back again
        assert wait_until(lambda: http.get("/api/v1/drift", params={"shift_alert_only": "true"}).json() == [])
        (cohort,) = http.get("/api/v1/cohorts", params={"by": "site"}).json()
        assert cohort["cohort"] == {"site": "a"} and cohort["drift_alerts"] == 1 and cohort["alarm_rate"] == 0.03
        # against the bundle's baseline: raw mean 140 must land on the baseline mean 100
        p = http.get("/api/v1/drift/s1/calibration-proposal", params={"against": "baseline"}).json()
        assert p["base_bundle"] == "cal-1" and p["security_counter"] == 5 and p["against"] == "baseline"
        ch0 = p["calibration"]["channels"][0]
        # raw mean 140 (offset 0, gain 1) must land on the baseline mean 100: offset 40, same gain, same baseline
        assert (ch0["offset"], ch0["gain_q16"], ch0["baseline_mean_q8"]) == (40, 65536, 100 * 256)
        assert p["calibration"]["channels"][1] == {"offset": 5, "gain_q16": 65536, "baseline_mean_q8": 0,
                                                   "baseline_std_q8": 10 * 256}  # fmt: skip
        # the proposal is a valid calibration component for a calibration-only bundle
        new_cal = Calibration.from_json(p["calibration"])
        assert new_cal.channels[0] == ChannelCalibration(40, 65536, 100 * 256, 20 * 256)
        assert new_cal.sample_rate_hz == CAL.sample_rate_hz
        assert http.get("/api/v1/drift/nobody/calibration-proposal").status_code == 404

        # the calibration-only bundle, built and signed by the server, rolled out to the drifted device
        r = http.post("/api/v1/drift/s1/calibration-bundle", json={"bundle_id": "cal-1-s1", "against": "baseline"})
        assert r.status_code == 201, r.text
        new = r.json()
        base = {c["type"]: c["sha256"] for c in http.get("/api/v1/bundles/cal-1").json()["components"]}
        comps = {c["type"]: c["sha256"] for c in new["components"]}
        assert new["security_counter"] == 5 and new["device_scope"] == "s1" and new["rollback_target"] == "cal-1"
        assert [t for t in comps if comps[t] != base[t]] == ["calibration"]
        r = http.post("/api/v1/rollouts", json={"bundle_id": "cal-1-s1", "stages": [{"percent": 100}]})
        assert r.status_code == 201, r.text
        rid = r.json()["rollout"]["id"]
        assert wait_until(lambda: http.get(f"/api/v1/rollouts/{rid}").json()["rollout"]["state"] == "completed")
        assert dev.downloaded == [comps["calibration"]]  # firmware, model... copied from the active bank
        dev.telemetry(100, 3, (0,) * 15 + (100,), [(100 * 256, 400 * 256), (0, 100 * 256)])  # recalibrated input
        assert wait_until(lambda: http.get("/api/v1/drift", params={"alert_only": "true"}).json() == [])
        assert http.get("/api/v1/drift").json()[0]["bundle_id"] == "cal-1-s1"
