"""End to end: real Mosquitto, real database (SQLite and PostgreSQL), devices scripted with plain paho clients.

Provision, upload, publish, complete a staged rollout; halt one whose canary fails and roll back; halt one
that installs cleanly but makes the model worse; survive duplicated and late reports; restart mid-rollout.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tinyfleet.fleetctl.rollouts import _line as rollout_line
from tinyfleet.fleetctl.rollouts import device_reason

from .srv_bundles import make_bundle
from .srv_fleet import Fleet, wait_until
from .srv_mqtt_client import TestClient as MqttClient

SITES = ("a", "b", "c")
HIST_OK = (0,) * 10 + (5, 10, 20, 30, 20, 15)


@pytest.fixture
def fleet(tmp_path: Path, db_url: str):
    f = Fleet(tmp_path, db_url)
    yield f
    f.close()


def _digest(bundle: bytes) -> bytes:
    from tinyfleet.bundles.format import bundle_digest

    return bundle_digest(bundle)


def _setup(fleet: Fleet, http, rt, n: int = 9, v2_counter: int = 1, fail_v2: bool = False, **device_kw):
    # Same security counter by default: a device can go back to app-1.0 after confirming app-2.0. (A higher
    # counter locks the old bundle out: test_rollback_is_not_attempted_below_the_device_counter.)
    v1 = make_bundle(fleet.key, "app-1.0", counter=1, firmware=b"F" * 9000)
    v2 = make_bundle(fleet.key, "app-2.0", counter=v2_counter, firmware=b"F" * 9000)  # same firmware: shared
    if fail_v2:
        device_kw["fails_health_on"] = {_digest(v2)}
    fleet.upload(http, v1)
    fleet.upload(http, v2)
    assert http.post("/api/v1/bundles/app-1.0/publish").status_code == 200
    for i in range(n):
        dev_id = f"dev-{i:02d}"
        fleet.provision(http, dev_id, "stm32l4", {"site": SITES[i % 3], "rev": "r1"})
        fleet.start_device(rt.broker_port, dev_id, "stm32l4", v1, **device_kw)
    # a device of another class: never targeted
    fleet.provision(http, "esp-00", "esp32s3", {"site": "a", "rev": "r1"})
    assert wait_until(
        lambda: all(d["running_bundle"] == "app-1.0" and d["online"]
                    for d in http.get("/api/v1/devices", params={"hardware_class": "stm32l4"}).json())
    )  # fmt: skip
    return v1, v2


def _rollout(http, **kw):
    body = {"bundle_id": "app-2.0", "stratify_by": ["site"]}
    body.update(kw)
    r = http.post("/api/v1/rollouts", json=body)
    assert r.status_code == 201, r.text
    return r.json()["rollout"]["id"]


def _state(http, rid):
    return http.get(f"/api/v1/rollouts/{rid}").json()


def test_staged_rollout_completes_with_stratified_canary_and_shared_blocks(fleet: Fleet) -> None:
    with fleet.server() as (http, rt):
        v1, v2 = _setup(fleet, http, rt)
        stages = [{"percent": 10}, {"percent": 50}, {"percent": 100}]
        rid = _rollout(http, stages=stages, target={"hardware_class": "stm32l4"})
        assert wait_until(lambda: _state(http, rid)["rollout"]["state"] == "completed", 30), _state(http, rid)
        st = _state(http, rid)
        assert st["counts"]["succeeded"] == 9 and st["counts"]["failed"] == 0
        devs = http.get(f"/api/v1/rollouts/{rid}/devices").json()
        canary = [d for d in devs if d["stage"] == 0]
        assert sorted(d["stratum"] for d in canary) == ["site=a", "site=b", "site=c"]  # 10 % of 9 -> 1, 3 strata
        assert all(d.installs == [_digest(v2)] for d in fleet.devices.values())
        assert "esp-00" not in {d["device_id"] for d in devs}
        dev = http.get("/api/v1/devices/dev-00").json()
        assert dev["running_bundle"] == "app-2.0" and dev["state"] == "IDLE"

        # what the broker retains: each distinct component once, addressed by hash
        watcher = MqttClient(rt.broker_port, "dev-00", fleet.passwords["dev-00"], client_id="dev-00-watch")
        fleet.devices["dev-00"].close()
        try:
            assert watcher.wait_connected()
            watcher.subscribe("fleet/blobs/#")
            b1 = http.get("/api/v1/bundles/app-1.0").json()["components"]
            b2 = http.get("/api/v1/bundles/app-2.0").json()["components"]
            distinct = {c["sha256"]: c["length"] for c in b1 + b2}
            assert len(distinct) == 6  # only the model differs: the other four components are shared
            want = sum((n + 4095) // 4096 for n in distinct.values())
            got = watcher.wait_for(lambda m: m.retain, count=want, timeout=5)
            assert len(got) == want and len({m.topic for m in got}) == want
        finally:
            watcher.close()
        audit = [e["action"] for e in http.get("/api/v1/audit").json()]
        assert "rollout.create" in audit and "bundle.upload" in audit


def test_failed_canary_halts_and_rolls_back(fleet: Fleet) -> None:
    with fleet.server() as (http, rt):
        v1, v2 = _setup(fleet, http, rt, fail_v2=True)
        rid = _rollout(http, stages=[{"percent": 10}, {"percent": 100}])
        assert wait_until(lambda: _state(http, rid)["rollout"]["state"] == "halted", 30), _state(http, rid)
        st = _state(http, rid)
        assert "install gate (stage 1)" in st["rollout"]["reason"]
        # one convention: stage_index indexes `stages` from 0, stage_number counts from 1 as every message does
        assert (st["rollout"]["stage_index"], st["rollout"]["stage_number"]) == (0, 1)
        assert rollout_line(st).split(", ")[1] == "stage 1/2"
        devs = http.get(f"/api/v1/rollouts/{rid}/devices").json()
        touched = [d for d in devs if d["status"] != "pending"]
        assert len(touched) == 3 and all(d["status"] == "rolled_back" for d in touched)
        assert all((d["stage"], d["stage_number"]) == (0, 1) for d in touched)
        # why they failed survives the rollback, by reason code, and the counts agree with the gate's message
        n_failed = int(re.search(r"(\d+) of 3 devices failed", st["rollout"]["reason"]).group(1))
        assert f"HealthOutputMismatch {n_failed}" in st["rollout"]["reason"]
        assert st["failures"] == {"HealthOutputMismatch": n_failed}
        assert sum(d["failure"] == "HealthOutputMismatch" for d in touched) == n_failed
        line = rollout_line(st)
        assert f"failed {n_failed} (HealthOutputMismatch {n_failed})" in line and "rolled back 3" in line
        failed_dev = next(d for d in touched if d["failure"])
        assert device_reason(failed_dev) == "HealthOutputMismatch: rolled back to app-1.0"
        for d in touched:
            sd = fleet.devices[d["device_id"]]
            assert wait_until(lambda sd=sd: any(rb for _s, dg, rb in sd.desired_seen if dg == _digest(v1)))
            assert sd.running_digest == _digest(v1) and sd.installs == []
        untouched = [fleet.devices[d["device_id"]] for d in devs if d["status"] == "pending"]
        assert untouched and all(sd.desired_seen == [] for sd in untouched)


def test_clean_install_that_worsens_the_model_halts_and_rolls_back(fleet: Fleet) -> None:
    with fleet.server() as (http, rt):
        v1, v2 = _setup(fleet, http, rt, n=3)
        for d in fleet.devices.values():  # pre-update baseline: 2 % alarms
            for _ in range(3):
                d.telemetry(100, 2, HIST_OK, [(100 * 256, 400 * 256), (0, 100 * 256)])
        behaviour = {"max_alarm_rate_increase": 0.05, "min_inferences": 200}
        rid = _rollout(http, stages=[{"percent": 33, "behaviour": behaviour}, {"percent": 100}], stratify_by=[])
        assert wait_until(lambda: _state(http, rid)["counts"]["succeeded"] == 1, 30), _state(http, rid)
        assert wait_until(lambda: "post-update telemetry" in (_state(http, rid)["rollout"]["waiting_for"] or ""))
        (canary,) = [d["device_id"] for d in http.get(f"/api/v1/rollouts/{rid}/devices").json() if d["stage"] == 0]
        sd = fleet.devices[canary]
        for _ in range(3):  # after the update: 30 % alarms
            sd.telemetry(100, 30, HIST_OK, [(100 * 256, 400 * 256), (0, 100 * 256)])
        assert wait_until(lambda: _state(http, rid)["rollout"]["state"] == "halted", 30), _state(http, rid)
        assert "alarm rate 0.020 -> 0.300" in _state(http, rid)["rollout"]["reason"]
        assert wait_until(lambda: sd.running_digest == _digest(v1), 15)
        assert wait_until(lambda: http.get(f"/api/v1/devices/{canary}").json()["running_bundle"] == "app-1.0")


def test_duplicate_and_late_reports_do_not_change_counts(fleet: Fleet) -> None:
    with fleet.server() as (http, rt):
        v1, v2 = _setup(fleet, http, rt, n=3)
        rid = _rollout(http, stages=[{"percent": 100}])
        assert wait_until(lambda: _state(http, rid)["rollout"]["state"] == "completed", 30)
        before = _state(http, rid)["counts"]
        n_reports = sum(len(d.sent_reports) for d in fleet.devices.values())
        for d in fleet.devices.values():
            for rec in reversed(d.sent_reports):  # every report again, in reverse order
                d.republish(rec)
        assert wait_until(lambda: rt.metrics.reports.labels("duplicate")._value.get() >= n_reports, 15)
        assert _state(http, rid)["counts"] == before
        for dev_id in fleet.devices:
            dev = http.get(f"/api/v1/devices/{dev_id}").json()
            assert dev["state"] == "IDLE" and dev["running_bundle"] == "app-2.0"


def test_server_restart_mid_rollout_loses_nothing(fleet: Fleet) -> None:
    with fleet.server() as (http, rt):
        v1, v2 = _setup(fleet, http, rt, n=6, hold_reports=True)
        rid = _rollout(http, stages=[{"percent": 50}, {"percent": 100}])
        assert wait_until(lambda: sum(len(d.sent_reports) for d in fleet.devices.values()) >= 3 * 5, 30)
    # server (and its broker) down; the canary devices now send the reports they held
    for d in fleet.devices.values():
        d.release_reports()
    with fleet.server() as (http, rt):
        assert wait_until(lambda: _state(http, rid)["rollout"]["state"] == "completed", 30), _state(http, rid)
        assert _state(http, rid)["counts"]["succeeded"] == 6
        total = sum(len(d.sent_reports) for d in fleet.devices.values())
        from sqlmodel import Session, func, select

        from tinyfleet.server.db.models import DeviceReport

        with Session(rt.engine) as s:
            assert wait_until(lambda: s.exec(select(func.count()).select_from(DeviceReport)).one() == total, 10)


def test_pause_resume_and_abort_with_rollback(fleet: Fleet) -> None:
    with fleet.server() as (http, rt):
        v1, v2 = _setup(fleet, http, rt, n=6, hold_reports=True)
        rid = _rollout(http, stages=[{"percent": 50}, {"percent": 100}])
        assert wait_until(lambda: _state(http, rid)["counts"]["assigned"] == 3)
        assert http.post(f"/api/v1/rollouts/{rid}/pause").json()["rollout"]["state"] == "paused"
        for d in fleet.devices.values():
            d.release_reports()
        assert wait_until(lambda: _state(http, rid)["counts"]["succeeded"] == 3)
        time.sleep(0.5)  # several engine intervals: a paused rollout must not advance
        st = _state(http, rid)
        assert st["rollout"]["state"] == "paused" and st["rollout"]["stage_index"] == 0 and st["counts"]["pending"] == 3
        assert http.post(f"/api/v1/rollouts/{rid}/pause").status_code == 409
        assert http.post(f"/api/v1/rollouts/{rid}/resume").json()["rollout"]["state"] == "running"
        assert wait_until(lambda: _state(http, rid)["rollout"]["state"] == "completed", 30)

        # A second rollout back to v1, aborted while its second stage downloads. Every touched device goes back
        # to v2: a canary that confirmed v1 installs v2 again, and a device mid-download drops its download for
        # the newer desired state and never installs v1.
        for d in fleet.devices.values():
            d.hold_blocks = True
        r = http.post("/api/v1/rollouts", json={"bundle_id": "app-1.0", "stages": [{"percent": 50}, {"percent": 100}],
                                               "stratify_by": ["site"]})  # fmt: skip
        rid2 = r.json()["rollout"]["id"]
        assert wait_until(lambda: _state(http, rid2)["counts"]["assigned"] == 3)
        stages = {d["device_id"]: d["stage"] for d in http.get(f"/api/v1/rollouts/{rid2}/devices").json()}
        canaries = [i for i, s in stages.items() if s == 0]
        for dev_id in canaries:
            fleet.devices[dev_id].release_blocks()
        assert wait_until(lambda: _state(http, rid2)["rollout"]["stage_index"] == 1, 30)
        second = [i for i in fleet.devices if i not in canaries]
        assert wait_until(lambda: all(fleet.devices[i].stalled for i in second))
        r = http.post(f"/api/v1/rollouts/{rid2}/abort")
        assert r.status_code == 200 and r.json()["rollout"]["state"] == "aborted"
        for d in fleet.devices.values():
            d.release_blocks()
        touched = {d["device_id"] for d in http.get(f"/api/v1/rollouts/{rid2}/devices").json()
                   if d["status"] == "rolled_back"}  # fmt: skip
        assert touched == set(fleet.devices)
        for sd in fleet.devices.values():
            assert wait_until(lambda sd=sd: sd.running_digest == _digest(v2), 15)
        assert all(fleet.devices[i].installs == [_digest(v2), _digest(v1), _digest(v2)] for i in canaries)
        assert all(fleet.devices[i].installs == [_digest(v2)] for i in second)
        actions = [e["action"] for e in http.get("/api/v1/audit", params={"action": "rollout.abort"}).json()]
        assert actions == ["rollout.abort"]


def test_rollback_is_not_attempted_below_the_device_counter(fleet: Fleet) -> None:
    with fleet.server() as (http, rt):
        v1, v2 = _setup(fleet, http, rt, n=2, v2_counter=5)
        for d in fleet.devices.values():
            d.telemetry(300, 3, HIST_OK, [(100 * 256, 400 * 256), (0, 100 * 256)])
        behaviour = {"max_alarm_rate_increase": 0.05, "min_inferences": 100}
        rid = _rollout(http, stages=[{"percent": 50, "behaviour": behaviour}, {"percent": 100}], stratify_by=[])
        assert wait_until(lambda: _state(http, rid)["counts"]["succeeded"] == 1, 30)
        (canary,) = [d["device_id"] for d in http.get(f"/api/v1/rollouts/{rid}/devices").json() if d["stage"] == 0]
        sd = fleet.devices[canary]
        assert wait_until(lambda: http.get(f"/api/v1/devices/{canary}").json()["running_bundle"] == "app-2.0")
        sd.telemetry(300, 90, HIST_OK, [(100 * 256, 400 * 256), (0, 100 * 256)])
        assert wait_until(lambda: _state(http, rid)["rollout"]["state"] == "halted", 30)
        (rd,) = [d for d in http.get(f"/api/v1/rollouts/{rid}/devices").json() if d["device_id"] == canary]
        assert rd["status"] == "succeeded"
        assert rd["reason"] == "cannot roll back: app-1.0 has security counter 1, the device stores 5"
        time.sleep(0.5)
        assert sd.running_digest == _digest(v2) and not any(rb for _s, _d, rb in sd.desired_seen)
