"""Devices, tokens, roles and the audit log through the REST API, on both databases, with a real broker."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient as HttpClient

from tinyfleet.server.api.app import create_app
from tinyfleet.server.runtime import FleetRuntime
from tinyfleet.server.settings import Settings

from ..srv_mqtt_client import TestClient as MqttClient

ADMIN = "admin-secret-token"


@pytest.fixture
def api(tmp_path: Path, db_url: str):
    rt = FleetRuntime(Settings(data_dir=tmp_path / "data", database_url=db_url, bootstrap_admin_token=ADMIN))
    with HttpClient(create_app(rt)) as http:
        http.headers["Authorization"] = f"Bearer {ADMIN}"
        yield http, rt


def _token(http: HttpClient, name: str, role: str) -> str:
    r = http.post("/api/v1/tokens", json={"name": name, "role": role})
    assert r.status_code == 201, r.text
    return r.json()["secret"]


def test_provision_gives_working_broker_credentials(api) -> None:
    http, rt = api
    r = http.post("/api/v1/devices", json={"id": "dev-1", "hardware_class": "stm32l4", "tags": {"site": "a"}})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["device"]["tags"] == {"site": "a"} and body["broker"]["port"] == rt.broker_port
    deadline, ok = time.monotonic() + 5, False
    while not ok and time.monotonic() < deadline:
        c = MqttClient(rt.broker_port, "dev-1", body["broker"]["password"])
        ok = c.wait_connected(2)
        c.close()
    assert ok
    assert http.get("/api/v1/devices/dev-1").json()["hardware_class"] == "stm32l4"
    assert [d["id"] for d in http.get("/api/v1/devices", params={"tag": "site=a"}).json()] == ["dev-1"]
    assert http.get("/api/v1/devices", params={"tag": "site=b"}).json() == []
    # rotating the password: the new one works, the old one stops working
    r = http.post("/api/v1/devices/dev-1/credentials")
    assert r.status_code == 200 and r.json()["broker"]["password"] != body["broker"]["password"]
    fresh = r.json()["broker"]["password"]
    deadline, swapped = time.monotonic() + 5, False
    while not swapped and time.monotonic() < deadline:
        old, new = (
            MqttClient(rt.broker_port, "dev-1", body["broker"]["password"]),
            MqttClient(rt.broker_port, "dev-1", fresh, client_id="dev-1b"),
        )
        swapped = not old.wait_connected(2) and new.wait_connected(2)
        old.close()
        new.close()
    assert swapped
    body["broker"]["password"] = fresh
    # deleting the device removes its broker credentials
    assert http.delete("/api/v1/devices/dev-1").status_code == 204
    deadline, refused = time.monotonic() + 5, False
    while not refused and time.monotonic() < deadline:
        c = MqttClient(rt.broker_port, "dev-1", body["broker"]["password"])
        refused = not c.wait_connected(2)
        c.close()
    assert refused


def test_bad_input_is_a_4xx_naming_the_problem(api) -> None:
    http, _ = api
    r = http.post("/api/v1/devices", json={"id": "bad/id", "hardware_class": "stm32l4"})
    assert r.status_code == 422 and r.json()["detail"].startswith("id: device id 'bad/id' must be 1-64 of")
    r = http.post("/api/v1/devices", json={"id": "d", "hardware_class": "STM32"})
    assert r.status_code == 422 and r.json()["detail"].startswith("hardware_class: hardware class 'STM32' must be")
    r = http.post("/api/v1/devices", json={"id": "d", "hardware_class": "stm32f4"})
    assert r.status_code == 400
    assert r.json()["detail"] == "no hardware profile 'stm32f4' (known: esp32s3, stm32l4)"
    r = http.post("/api/v1/devices", json={"id": "d"})
    assert r.status_code == 422 and r.json()["detail"].startswith("hardware_class: Field required")
    http.post("/api/v1/devices", json={"id": "d", "hardware_class": "esp32s3"})
    r = http.post("/api/v1/devices", json={"id": "d", "hardware_class": "esp32s3"})
    assert r.status_code == 409 and "already registered" in r.json()["detail"]
    assert http.get("/api/v1/devices/nope").status_code == 404
    r = http.get("/api/v1/devices", params={"tag": "novalue"})
    assert r.status_code == 422 and r.json()["detail"].startswith("query.tag.0: tag filter 'novalue' must be")


def test_roles_are_enforced(api) -> None:
    http, _ = api
    viewer, operator = _token(http, "vic", "viewer"), _token(http, "olga", "operator")
    no_auth = http.get("/api/v1/devices", headers={"Authorization": ""})
    assert no_auth.status_code == 401 and "missing bearer token" in no_auth.json()["detail"]
    assert http.get("/api/v1/devices", headers={"Authorization": "Bearer wrong"}).status_code == 401
    as_viewer = {"Authorization": f"Bearer {viewer}"}
    assert http.get("/api/v1/devices", headers=as_viewer).status_code == 200
    r = http.post("/api/v1/devices", json={"id": "x", "hardware_class": "stm32l4"}, headers=as_viewer)
    assert r.status_code == 403 and "needs 'operator'" in r.json()["detail"]
    as_op = {"Authorization": f"Bearer {operator}"}
    assert http.post("/api/v1/devices", json={"id": "x", "hardware_class": "stm32l4"}, headers=as_op).status_code == 201
    assert http.delete("/api/v1/devices/x", headers=as_op).status_code == 403
    assert http.post("/api/v1/tokens", json={"name": "n", "role": "admin"}, headers=as_op).status_code == 403
    assert http.delete("/api/v1/tokens/vic").status_code == 200
    assert http.get("/api/v1/devices", headers=as_viewer).status_code == 401


def test_every_mutation_is_audited_with_its_result(api) -> None:
    http, _ = api
    operator = _token(http, "olga", "operator")
    as_op = {"Authorization": f"Bearer {operator}"}
    http.post("/api/v1/devices", json={"id": "d1", "hardware_class": "stm32l4"}, headers=as_op)
    http.post("/api/v1/devices", json={"id": "d1", "hardware_class": "stm32l4"}, headers=as_op)
    http.delete("/api/v1/devices/d1")
    entries = http.get("/api/v1/audit").json()
    got = [(e["actor"], e["action"], e["target"], e["result"]) for e in entries]
    assert got == [
        ("bootstrap-admin", "device.delete", "d1", "ok"),
        ("olga", "device.provision", "d1", "refused: device 'd1' is already registered"),
        ("olga", "device.provision", "d1", "ok"),
        ("bootstrap-admin", "token.create", "olga", "ok"),
    ]


def test_healthz_and_metrics(api) -> None:
    http, _ = api
    http.post("/api/v1/devices", json={"id": "d1", "hardware_class": "stm32l4"})
    h = http.get("/healthz").json()
    assert h["status"] == "ok" and h["database"] and h["broker"] and h["schema_revision"]
    text = http.get("/metrics").text
    assert 'tinyfleet_devices{presence="offline"} 1.0' in text


def test_device_reports_list_what_the_server_stored(tmp_path) -> None:
    from sqlmodel import Session

    from tinyfleet.server.api.app import create_app
    from tinyfleet.server.db.models import DeviceReport
    from tinyfleet.server.runtime import FleetRuntime
    from tinyfleet.server.settings import Settings

    rt = FleetRuntime(Settings(data_dir=tmp_path / "d", bootstrap_admin_token="t", run_model_gate=False))
    rt.start()
    try:
        with HttpClient(create_app(rt, manage_runtime=False)) as http:
            h = {"Authorization": "Bearer t"}
            r = http.post("/api/v1/devices", json={"id": "r1", "hardware_class": "stm32l4"}, headers=h)
            assert r.status_code == 201
            with Session(rt.engine) as s:
                for epoch, seq, state in ((2, 1, "CHECKING"), (1, 7, "IDLE"), (2, 2, "DOWNLOADING")):
                    s.add(DeviceReport(device_id="r1", seq=(epoch << 32) | seq, received_at=1.0, state=state))
                s.commit()
            got = http.get("/api/v1/devices/r1/reports", headers=h).json()
            assert [(r["epoch"], r["seq"], r["state"]) for r in got] == [(1, 7, "IDLE"), (2, 1, "CHECKING"),
                                                                        (2, 2, "DOWNLOADING")]  # fmt: skip
            assert http.get("/api/v1/devices/nope/reports", headers=h).status_code == 404
    finally:
        rt.stop()


def test_refused_actions_are_audited_by_route(api) -> None:
    http, _ = api
    viewer = _token(http, "vic", "viewer")
    r = http.post("/api/v1/devices", json={"id": "x", "hardware_class": "stm32l4"},
                  headers={"Authorization": f"Bearer {viewer}"})  # fmt: skip
    assert r.status_code == 403
    assert http.delete("/api/v1/devices/x", headers={"Authorization": ""}).status_code == 401
    assert http.delete("/api/v1/tokens/vic", headers={"Authorization": "Bearer forged"}).status_code == 401
    assert http.get("/api/v1/devices", headers={"Authorization": ""}).status_code == 401  # a read: not audited
    got = [(e["actor"], e["action"], e["target"], e["result"]) for e in http.get("/api/v1/audit").json()][:3]
    assert got == [
        ("(unknown token)", "DELETE /api/v1/tokens/{name}", "/api/v1/tokens/vic", "refused: unknown or revoked token"),
        ("(no token)", "DELETE /api/v1/devices/{device_id}", "/api/v1/devices/x",
         "refused: missing bearer token (Authorization: Bearer <token>)"),
        ("vic", "POST /api/v1/devices", "/api/v1/devices",
         "refused: role 'viewer' may not do this; it needs 'operator'"),
    ]  # fmt: skip


def test_the_last_admin_token_cannot_be_revoked(api) -> None:
    http, _ = api
    r = http.delete("/api/v1/tokens/bootstrap-admin")
    assert r.status_code == 409 and "last admin token" in r.json()["detail"]
    second = _token(http, "root-2", "admin")
    assert http.delete("/api/v1/tokens/bootstrap-admin").status_code == 200
    as_second = {"Authorization": f"Bearer {second}"}
    assert http.delete("/api/v1/tokens/root-2", headers=as_second).status_code == 409
    assert http.get("/api/v1/tokens", headers=as_second).status_code == 200  # still locked in, not out
