"""Retained messages on the broker: published once per component, cleared when the last live bundle goes;
presence from the device's retained last will."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from ..srv_bundles import make_bundle
from ..srv_fleet import Fleet, wait_until
from ..srv_mqtt_client import TestClient as MqttClient


@pytest.fixture
def fleet(tmp_path: Path, db_url: str):
    f = Fleet(tmp_path, db_url)
    yield f
    f.close()


def _retained(port: int, user: str, pw: str, topic: str) -> dict[str, bytes]:
    c = MqttClient(port, user, pw, client_id=f"{user}-probe-{time.monotonic_ns()}")
    try:
        assert c.wait_connected()
        c.subscribe(topic)
        # retained messages arrive right after SUBACK: collect until none came for 0.5 s (at most 5 s)
        deadline, seen, quiet_since = time.monotonic() + 5, -1, time.monotonic()
        while time.monotonic() < deadline:
            if len(c.messages) != seen:
                seen, quiet_since = len(c.messages), time.monotonic()
            elif time.monotonic() - quiet_since > 0.5:
                break
            time.sleep(0.05)
        return {m.topic: m.payload for m in c.messages if m.retain}
    finally:
        c.close()


def test_retire_clears_only_blocks_no_live_bundle_uses(fleet: Fleet) -> None:
    with fleet.server() as (http, rt):
        fleet.provision(http, "probe", "stm32l4", {})
        pw = fleet.passwords["probe"]
        fleet.upload(http, make_bundle(fleet.key, "b1", firmware=b"F" * 5000))
        fleet.upload(http, make_bundle(fleet.key, "b2", firmware=b"F" * 5000))  # shares firmware with b1
        for b in ("b1", "b2"):
            assert http.post(f"/api/v1/bundles/{b}/publish").json()["status"] == "published"
        comps = {b: {c["type"]: c["sha256"] for c in http.get(f"/api/v1/bundles/{b}").json()["components"]}
                 for b in ("b1", "b2")}  # fmt: skip
        assert comps["b1"]["firmware"] == comps["b2"]["firmware"] and comps["b1"]["model"] != comps["b2"]["model"]
        # firmware 2 blocks, two models 2 each, thresholds + calibration + health vectors shared: 1 each
        assert wait_until(lambda: len(_retained(rt.broker_port, "probe", pw, "fleet/blobs/#")) == 9, 5)
        r = http.post("/api/v1/bundles/b2/retire")
        assert r.status_code == 200 and r.json()["blocks_cleared"] == 2  # b2's model: 5000 bytes = 2 blocks
        blobs = _retained(rt.broker_port, "probe", pw, "fleet/blobs/#")
        assert {t.split("/")[2] for t in blobs} == set(comps["b1"].values())
        metas = _retained(rt.broker_port, "probe", pw, "fleet/bundles/#")
        assert list(metas) == [f"fleet/bundles/{http.get('/api/v1/bundles/b1').json()['digest']}/meta"]
        assert http.post("/api/v1/bundles/b2/retire").status_code == 409


def test_bundle_in_use_cannot_be_retired_and_presence_follows_the_will(fleet: Fleet) -> None:
    with fleet.server() as (http, rt):
        v1 = make_bundle(fleet.key, "b1")
        fleet.upload(http, v1)
        fleet.upload(http, make_bundle(fleet.key, "b2"))
        fleet.provision(http, "d1", "stm32l4", {})
        dev = fleet.start_device(rt.broker_port, "d1", "stm32l4", v1)
        assert http.post("/api/v1/rollouts", json={"bundle_id": "b2", "stages": [{"percent": 100}]}).status_code == 201
        assert wait_until(lambda: http.get("/api/v1/devices/d1").json()["running_bundle"] == "b2")
        r = http.post("/api/v1/bundles/b2/retire")
        assert r.status_code == 409 and "device d1 has it as desired state" in r.json()["detail"]
        assert http.get("/api/v1/devices/d1").json()["online"] is True
        # the device vanishes without DISCONNECT: the broker publishes its will (presence offline)
        sock = dev.client.socket()
        assert isinstance(sock, socket.socket)
        dev.client.loop_stop()
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        assert wait_until(lambda: http.get("/api/v1/devices/d1").json()["online"] is False, 10)
        assert 'tinyfleet_devices{presence="offline"} 1.0' in http.get("/metrics").text


def test_a_restart_publishes_bundles_again_if_the_broker_lost_them(fleet: Fleet) -> None:
    import shutil

    with fleet.server() as (http, rt):
        fleet.provision(http, "probe", "stm32l4", {})
        fleet.upload(http, make_bundle(fleet.key, "b1", firmware=b"F" * 5000))
        assert http.post("/api/v1/bundles/b1/publish").status_code == 200
    shutil.rmtree(fleet.tmp / "data/broker/persistence")  # the broker's saved retained messages are gone
    with fleet.server() as (http, rt):
        blobs = _retained(rt.broker_port, "probe", fleet.passwords["probe"], "fleet/blobs/#")
        metas = _retained(rt.broker_port, "probe", fleet.passwords["probe"], "fleet/bundles/#")
        assert len(blobs) == 7 and len(metas) == 1  # firmware 2 + model 2 + three one-block components


def test_a_broker_crash_while_the_server_runs_is_noticed_and_repaired(fleet: Fleet) -> None:
    import os
    import shutil
    import signal

    with fleet.server() as (http, rt):
        fleet.provision(http, "probe", "stm32l4", {})
        fleet.upload(http, make_bundle(fleet.key, "b1", firmware=b"F" * 5000))
        assert http.post("/api/v1/bundles/b1/publish").status_code == 200
        assert rt.broker is not None
        pid = rt.broker._pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # the broker alone dies, before saving: its retained messages are gone
        assert wait_until(lambda: not rt.broker.running, 5)
        shutil.rmtree(rt.broker.persistence_dir)
        from sqlmodel import Session

        from tinyfleet.server.services import devices

        with Session(rt.engine) as s:
            rt.broker.start(devices.all_hashes(s))  # an operator (or systemd) starts it again
        pw = fleet.passwords["probe"]
        assert wait_until(lambda: len(_retained(rt.broker_port, "probe", pw, "fleet/blobs/#")) == 7, 20)
        assert len(_retained(rt.broker_port, "probe", pw, "fleet/bundles/#")) == 1
