"""Presence expires: a device that goes away without its will (a clean DISCONNECT, a lost broker session) is
shown offline once silent for `presence_timeout_s`, online again at its next message, and a rollout never
counts it as succeeded on what the server last saw (docs/operations.md, "Devices and broker access")."""

from __future__ import annotations

from pathlib import Path

import pytest

from .srv_bundles import make_bundle
from .srv_fleet import Fleet, wait_until

HIST = (0,) * 10 + (5, 10, 20, 30, 20, 15)


@pytest.fixture
def fleet(tmp_path: Path, db_url: str):
    f = Fleet(tmp_path, db_url)
    f.overrides = {"presence_timeout_s": 1.0}
    yield f
    f.close()


def test_a_silent_device_goes_offline_and_is_never_counted_as_succeeded(fleet: Fleet) -> None:
    with fleet.server() as (http, rt):
        v1 = make_bundle(fleet.key, "app-1.0", counter=1, firmware=b"F" * 9000)
        fleet.upload(http, v1)
        assert http.post("/api/v1/bundles/app-1.0/publish").status_code == 200
        for dev_id in ("ghost", "quiet"):
            fleet.provision(http, dev_id, "stm32l4", {})
            fleet.start_device(rt.broker_port, dev_id, "stm32l4", v1)

        def dev(dev_id: str) -> dict:
            return http.get(f"/api/v1/devices/{dev_id}").json()

        assert wait_until(lambda: all(dev(i)["running_bundle"] == "app-1.0" for i in ("ghost", "quiet")))
        fleet.devices["ghost"].close()  # a clean DISCONNECT: the broker publishes no will
        assert wait_until(lambda: not dev("ghost")["online"] and not dev("quiet")["online"], 15)
        metrics = http.get("/metrics").text
        assert 'tinyfleet_devices{presence="offline"} 2.0' in metrics

        # a message of any kind brings a silent device back
        fleet.devices["quiet"].telemetry(100, 1, HIST, [(0, 256)])
        assert wait_until(lambda: dev("quiet")["online"], 15)

        # the ghost last ran app-1.0; a rollout of app-1.0 must hear from it before counting it
        r = http.post("/api/v1/rollouts", json={"bundle_id": "app-1.0", "target": {"device_ids": ["ghost"]},
                                                "stages": [{"percent": 100}]})  # fmt: skip
        assert r.status_code == 201, r.text
        rid = r.json()["rollout"]["id"]
        assert wait_until(lambda: http.get(f"/api/v1/rollouts/{rid}/devices").json()[0]["status"] != "pending")
        (entry,) = http.get(f"/api/v1/rollouts/{rid}/devices").json()
        assert entry["status"] == "assigned"
        assert http.get(f"/api/v1/rollouts/{rid}").json()["counts"]["succeeded"] == 0
