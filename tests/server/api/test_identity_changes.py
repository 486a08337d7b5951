"""Adding, rotating and revoking one device through the API: what real MQTT clients see at once, what the
broker holds after a restart, and what one change costs the broker (one identity file, no reload)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient as HttpClient
from sqlmodel import Session

from tinyfleet.server.api.app import create_app
from tinyfleet.server.runtime import FleetRuntime
from tinyfleet.server.services import devices
from tinyfleet.server.settings import Settings
from tinyfleet.server.workers.broker_process import EmbeddedBroker

from ..srv_fleet import wait_until
from ..srv_mqtt_client import TestClient as MqttClient

ADMIN = "changes-admin"
RELOADED = "tinyfleet identity: broker reloaded its configuration"  # the plugin's line on every SIGHUP reload


@pytest.fixture
def api(tmp_path: Path):
    rt = FleetRuntime(Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'fleet.db'}",
                               bootstrap_admin_token=ADMIN, run_model_gate=False))  # fmt: skip
    with HttpClient(create_app(rt)) as http:
        http.headers["Authorization"] = f"Bearer {ADMIN}"
        yield http, rt


def _first_try(rt: FleetRuntime, user: str, password: str) -> bool:
    """One CONNECT, no retry: accepted or not. (One second for the CONNACK, on a shared, loaded machine.)"""
    c = MqttClient(rt.broker_port, user, password)
    try:
        return c.wait_connected(1.0)
    finally:
        c.close()


def _provision(http: HttpClient, device_id: str) -> str:
    r = http.post("/api/v1/devices", json={"id": device_id, "hardware_class": "stm32l4"})
    assert r.status_code == 201, r.text
    return r.json()["broker"]["password"]


def _files(broker: EmbeddedBroker) -> dict[str, tuple[int, int]]:
    """Every identity file with its inode and modification time: a replaced file changes both."""
    out = {}
    for p in broker.identities_dir.rglob("*"):
        if p.is_file():
            st = p.stat()
            out[str(p.relative_to(broker.identities_dir))] = (st.st_ino, st.st_mtime_ns)
    return out


def _changed(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> set[str]:
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def test_a_provisioned_device_connects_on_its_first_try(api) -> None:
    http, rt = api
    for i in range(20):
        assert _first_try(rt, f"first-{i}", _provision(http, f"first-{i}")), i


def test_rotation_and_deletion_drop_live_sessions_and_hold_after_a_broker_restart(api) -> None:
    http, rt = api
    broker = rt.broker
    assert broker is not None
    old = _provision(http, "rot-1")
    doomed_pw = _provision(http, "del-1")
    keep_pw = _provision(http, "keep-1")
    live = MqttClient(rt.broker_port, "rot-1", old)
    doomed = MqttClient(rt.broker_port, "del-1", doomed_pw)
    bystander = MqttClient(rt.broker_port, "keep-1", keep_pw)
    try:
        assert live.wait_connected() and doomed.wait_connected() and bystander.wait_connected()
        r = http.post("/api/v1/devices/rot-1/credentials")
        assert r.status_code == 200, r.text
        new = r.json()["broker"]["password"]
        assert live.dropped.wait(2)  # the broker dropped it before answering; the client hears it a moment later
        assert not _first_try(rt, "rot-1", old) and _first_try(rt, "rot-1", new)
        assert http.delete("/api/v1/devices/del-1").status_code == 204
        assert doomed.dropped.wait(2)
        assert wait_until(lambda: not doomed.client.is_connected(), 5)  # and its reconnects are refused
        assert not _first_try(rt, "del-1", doomed_pw)
        assert not bystander.dropped.is_set()
    finally:
        for c in (live, doomed, bystander):
            c.close()
    broker.stop()
    with Session(rt.engine) as s:
        broker.start(devices.all_hashes(s))
    assert _first_try(rt, "rot-1", new) and not _first_try(rt, "rot-1", old)
    assert not _first_try(rt, "del-1", doomed_pw)
    assert _first_try(rt, "keep-1", keep_pw)


def test_one_change_writes_one_identity_file_and_reloads_nothing(api) -> None:
    http, rt = api
    broker = rt.broker
    assert broker is not None and broker._proc is not None
    pid = broker._proc.pid
    passwords = {f"n-{i:02d}": _provision(http, f"n-{i:02d}") for i in range(30)}
    before = _files(broker)
    _provision(http, "n-new")
    after = _files(broker)
    assert _changed(before, after) == {str(broker.identity_file("n-new").relative_to(broker.identities_dir))}
    before = after
    assert http.post("/api/v1/devices/n-07/credentials").status_code == 200
    after = _files(broker)
    assert _changed(before, after) == {str(broker.identity_file("n-07").relative_to(broker.identities_dir))}
    before = after
    assert http.delete("/api/v1/devices/n-08").status_code == 204
    after = _files(broker)
    assert _changed(before, after) == {str(broker.identity_file("n-08").relative_to(broker.identities_dir))}
    assert _first_try(rt, "n-09", passwords["n-09"])

    log = broker.log_file.read_text()
    assert "tinyfleet identity: n-new present" in log  # the plugin confirmed each change...
    assert RELOADED not in log and broker._proc.pid == pid  # ...and the broker never reloaded or restarted
    os.kill(pid, signal.SIGHUP)  # the detector works: a reload does leave its line
    assert wait_until(lambda: RELOADED in broker.log_file.read_text(), 5)
