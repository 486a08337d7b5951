"""Device identity through the API with a real broker: one grammar for ids, reserved ids, isolation judged by
what real MQTT clients receive, all-or-nothing provisioning, rotation and deletion (docs/operations.md,
"Device ids")."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient as HttpClient
from sqlmodel import Session

from tinyfleet.protocol import topics
from tinyfleet.server.api.app import create_app
from tinyfleet.server.runtime import FleetRuntime
from tinyfleet.server.services import devices
from tinyfleet.server.settings import Settings

from ..srv_bundles import make_bundle
from ..srv_fleet import Fleet, wait_until
from ..srv_mqtt_client import TestClient as MqttClient

ADMIN = "admin-secret-token"
# The grammar's edges: prefixes of each other, case variants, each punctuation mark, the longest, and names
# that were server-owned topic levels in protocol v1.
EDGE_IDS = [
    "a", "ab", "abc", "A", "Ab", "AB", "a.b", "a_b", "a-b", "a.-_z", "9", "bundles", "blobs", "d", "fleet",
    "x" * 64, "x" * 63,
]  # fmt: skip


def _runtime(tmp_path: Path, db_url: str, **kw: object) -> FleetRuntime:
    return FleetRuntime(
        Settings(data_dir=tmp_path / "data", database_url=db_url, bootstrap_admin_token=ADMIN, **kw)  # type: ignore[arg-type]
    )


@pytest.fixture
def api(tmp_path: Path, db_url: str):
    rt = _runtime(tmp_path, db_url, broker_replica_users=["replica-2"])
    with HttpClient(create_app(rt)) as http:
        http.headers["Authorization"] = f"Bearer {ADMIN}"
        yield http, rt


@pytest.fixture
def sqlite_api(tmp_path: Path):
    # a server user of the test's own: a client under the runtime's user would take over (and lose) its session
    rt = _runtime(tmp_path, f"sqlite:///{tmp_path / 'fleet.db'}", broker_replica_users=["isolation-probe"])
    with HttpClient(create_app(rt)) as http:
        http.headers["Authorization"] = f"Bearer {ADMIN}"
        yield http, rt


def _provision(http: HttpClient, device_id: str, **body: object) -> dict:
    r = http.post("/api/v1/devices", json={"id": device_id, "hardware_class": "stm32l4", **body})
    assert r.status_code == 201, r.text
    return r.json()


def _connects(rt: FleetRuntime, user: str, password: str, timeout: float = 5.0) -> bool:
    c = MqttClient(rt.broker_port, user, password)
    try:
        return c.wait_connected(timeout)
    finally:
        c.close()


def _settle() -> None:
    time.sleep(0.5)  # let in-flight deliveries arrive before asserting that something did NOT arrive


def test_every_ordered_pair_of_edge_ids_is_isolated(sqlite_api) -> None:
    http, rt = sqlite_api
    pw = {i: _provision(http, i)["broker"]["password"] for i in EDGE_IDS}
    server = MqttClient(rt.broker_port, "isolation-probe", rt.broker_password)
    clients = {i: MqttClient(rt.broker_port, i, pw[i]) for i in EDGE_IDS}
    try:
        assert server.wait_connected() and all(c.wait_connected() for c in clients.values())
        server.subscribe(f"{topics.ROOT}/#")
        everything = ["#", f"{topics.ROOT}/#", "+/#", "$SYS/#", f"{topics.DEVICES}/#", f"{topics.DEVICES}/+/+/+"]
        for me, c in clients.items():
            others = [getattr(topics, k)(o) for o in EDGE_IDS if o != me for k in topics.KINDS]
            c.subscribe_many([*everything, *others])
        for i in EDGE_IDS:
            server.publish(topics.desired(i), f"for-{i}".encode(), retain=True)
        for me, c in clients.items():
            c.publish(topics.state(me), f"state-{me}".encode())
            for other in EDGE_IDS:
                if other != me:  # every device tries to speak for every other one
                    for kind in ("state", "telemetry", "presence", "desired"):
                        c.publish(getattr(topics, kind)(other), f"forged-by-{me}".encode())
        for me, c in clients.items():
            assert c.wait_for(lambda m, me=me: m.payload == f"for-{me}".encode())
            assert server.wait_for(lambda m, me=me: m.topic == topics.state(me) and m.payload == f"state-{me}".encode())
        _settle()
        for me, c in clients.items():
            got = {(m.topic, m.payload) for m in c.messages}
            assert got == {(topics.desired(me), f"for-{me}".encode())}, (me, sorted(got)[:5])
        forged = [m for m in server.messages if m.payload.startswith(b"forged")]
        assert forged == []
    finally:
        for c in (server, *clients.values()):
            c.close()


BAD_IDS = {
    "dev:1": "must be",
    "dev-1\n": "must be",
    "-dev": "must be",
    "x" * 65: "must be",
    "a/b": "must be",
    "+": "must be",
    "#": "must be",
    " ": "must be",
    "dév": "must be",
    "fleet-server": "reserved",
    "replica-2": "reserved",
}


def test_malformed_and_reserved_ids_are_refused_and_break_nothing(api, tmp_path: Path, db_url: str) -> None:
    http, rt = api
    for bad, why in BAD_IDS.items():
        r = http.post("/api/v1/devices", json={"id": bad, "hardware_class": "stm32l4"})
        assert r.status_code in (400, 422), (bad, r.status_code, r.text)
        assert why in r.json()["detail"] if r.status_code == 400 else True, (bad, r.text)
    for field, value in (("hardware_class", "stm32l4\n"), ("tags", {"site": "a\n"}), ("tags", {"site\n": "a"})):
        body = {"id": "ok-1", "hardware_class": "stm32l4", field: value}
        assert http.post("/api/v1/devices", json=body).status_code == 422, (field, value)
    assert http.post("/api/v1/tokens", json={"name": "alice\n", "role": "viewer"}).status_code in (400, 422)
    assert http.get("/api/v1/devices").json() == []
    # nothing was committed and nothing is wedged: the next provisioning and rotation work
    body = _provision(http, "dev-1")
    assert _connects(rt, "dev-1", body["broker"]["password"])
    rotated = http.post("/api/v1/devices/dev-1/credentials").json()["broker"]["password"]
    assert _connects(rt, "dev-1", rotated) and not _connects(rt, "dev-1", body["broker"]["password"])
    assert rt.broker is not None  # one identity per broker user: the refused ids left no file behind
    held = sorted(p.name for p in rt.broker.identities_dir.rglob("*") if p.is_file())
    assert held == ["dev-1", "fleet-server", "replica-2"]
    assert "fleet-server" not in {d["id"] for d in http.get("/api/v1/devices").json()}


def test_a_broker_that_fails_changes_nothing(api) -> None:
    http, rt = api
    first = _provision(http, "dev-1")["broker"]["password"]
    broker = rt.broker
    assert broker is not None
    broker.stop()
    try:
        r = http.post("/api/v1/devices", json={"id": "dev-2", "hardware_class": "stm32l4"})
        assert r.status_code == 503 and "nothing was changed" in r.json()["detail"], r.text
        r = http.post("/api/v1/devices/dev-1/credentials")
        assert r.status_code == 503, r.text
        r = http.delete("/api/v1/devices/dev-1")
        assert r.status_code == 503, r.text
    finally:
        with Session(rt.engine) as s:
            broker.start(devices.all_hashes(s))
    assert [d["id"] for d in http.get("/api/v1/devices").json()] == ["dev-1"]
    assert _connects(rt, "dev-1", first)  # its password survived the failed rotation and deletion
    second = _provision(http, "dev-2")["broker"]["password"]
    assert _connects(rt, "dev-2", second)


def test_a_device_that_was_in_rollouts_is_deleted_at_once(tmp_path: Path, db_url: str) -> None:
    fleet = Fleet(tmp_path, db_url)
    with fleet.server() as (http, rt):
        for i in ("dev-1", "dev-2", "dev-3"):
            fleet.provision(http, i, "stm32l4", {"site": "a"})
        fleet.upload(http, make_bundle(fleet.key, "b1", counter=1))
        fleet.upload(http, make_bundle(fleet.key, "b2", counter=1))
        r1 = http.post("/api/v1/rollouts", json={"bundle_id": "b1", "stages": [{"percent": 100}]})
        assert r1.status_code == 201, r1.text
        rid = r1.json()["rollout"]["id"]
        assert wait_until(lambda: http.get(f"/api/v1/rollouts/{rid}").json()["counts"]["pending"] == 0)
        assert http.post(f"/api/v1/rollouts/{rid}/abort", params={"rollback": False}).status_code == 200
        live = MqttClient(rt.broker_port, "dev-1", fleet.passwords["dev-1"])
        try:
            assert live.wait_connected()
            assert http.delete("/api/v1/devices/dev-1").status_code == 204
            assert wait_until(lambda: not live.client.is_connected(), 5)  # the broker dropped its session
        finally:
            live.close()
        assert not _connects(rt, "dev-1", fleet.passwords["dev-1"])
        assert http.get("/api/v1/devices/dev-1").status_code == 404
        history = http.get(f"/api/v1/rollouts/{rid}/devices").json()
        assert [d["device_id"] for d in history] == ["dev-1", "dev-2", "dev-3"]  # still readable, still named
        # in an active rollout too: its entry fails with the reason named, the others go on
        r2 = http.post("/api/v1/rollouts", json={"bundle_id": "b2", "stages": [{"percent": 100}]})
        assert r2.status_code == 201, r2.text
        rid2 = r2.json()["rollout"]["id"]
        assert wait_until(lambda: http.get(f"/api/v1/rollouts/{rid2}").json()["counts"]["pending"] == 0)
        assert http.delete("/api/v1/devices/dev-2").status_code == 204
        entry = {d["device_id"]: d for d in http.get(f"/api/v1/rollouts/{rid2}/devices").json()}["dev-2"]
        assert (entry["status"], entry["reason"]) == ("failed", "device deleted")
        assert not _connects(rt, "dev-2", fleet.passwords["dev-2"])
        assert _connects(rt, "dev-3", fleet.passwords["dev-3"])
