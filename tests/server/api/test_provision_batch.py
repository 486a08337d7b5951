"""POST /api/v1/devices/batch: every device of a batch connects as soon as the response is back, and a batch
that is refused or that the broker does not take leaves no device, no identity file and no credential behind.
On both databases, with the real embedded broker; connections are judged by the CONNACK a real client gets."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient as HttpClient
from sqlmodel import Session

from tinyfleet.server.api.app import create_app
from tinyfleet.server.broker.passwords import hash_password
from tinyfleet.server.runtime import FleetRuntime
from tinyfleet.server.services import devices
from tinyfleet.server.services.device_batches import MAX_BATCH
from tinyfleet.server.settings import Settings
from tinyfleet.server.workers.broker_process import BrokerError

from ..srv_raw_connect import ACCEPTED, NOT_AUTHORIZED, connack_code

ADMIN = "batch-admin"
URL = "/api/v1/devices/batch"


@pytest.fixture
def api(tmp_path: Path, db_url: str):
    rt = FleetRuntime(Settings(data_dir=tmp_path / "data", database_url=db_url, bootstrap_admin_token=ADMIN,
                               run_model_gate=False))  # fmt: skip
    with HttpClient(create_app(rt)) as http:
        http.headers["Authorization"] = f"Bearer {ADMIN}"
        yield http, rt


def _entry(device_id: str, **kw: object) -> dict[str, object]:
    return {"id": device_id, "hardware_class": "stm32l4", **kw}


def _connack(rt: FleetRuntime, device_id: str, password: str) -> int | None:
    """One CONNECT, no retry."""
    return connack_code(rt.broker_port, device_id.encode(), password.encode())


def _identity_files(rt: FleetRuntime) -> set[str]:
    assert rt.broker is not None
    return {p.name for p in rt.broker.identities_dir.rglob("*") if p.is_file()} - set(rt.broker.server_users)


def _ids(http: HttpClient) -> list[str]:
    return [d["id"] for d in http.get("/api/v1/devices").json()]


def test_every_device_of_a_batch_connects_on_its_first_try(api) -> None:
    http, rt = api
    batch = [_entry(f"b-{i:03d}", tags={"line": f"l{i % 3}"}) for i in range(60)]
    r = http.post(URL, json={"devices": batch})
    assert r.status_code == 201, r.text
    got = r.json()["devices"]
    assert [d["device"]["id"] for d in got] == [e["id"] for e in batch]  # the request's order
    assert got[4]["device"]["tags"] == {"line": "l1"} and got[4]["broker"]["username"] == "b-004"
    assert len({d["broker"]["password"] for d in got}) == 60
    for d in got:  # right after the response: one CONNECT each, no retry
        assert _connack(rt, d["broker"]["username"], d["broker"]["password"]) == ACCEPTED, d["device"]["id"]
    assert _connack(rt, "b-000", got[1]["broker"]["password"]) == NOT_AUTHORIZED  # each has its own password
    assert sorted(_ids(http)) == [e["id"] for e in batch] and _identity_files(rt) == {e["id"] for e in batch}
    [entry] = http.get("/api/v1/audit", params={"action": "device.provision_batch"}).json()
    assert entry["result"] == "ok" and entry["target"] == "b-000 .. b-059 (60 devices)"
    assert entry["detail"]["devices"] == [e["id"] for e in batch]


def test_batches_and_single_provisionings_at_once_all_succeed(api) -> None:
    http, rt = api

    def batch(k: int) -> int:
        return http.post(URL, json={"devices": [_entry(f"c{k}-{i:02d}") for i in range(40)]}).status_code

    def single(i: int) -> int:
        return http.post("/api/v1/devices", json=_entry(f"s-{i:02d}")).status_code

    with ThreadPoolExecutor(8) as pool:  # their shard locks overlap: none may wait on another in a circle
        codes = list(pool.map(batch, range(4))) + list(pool.map(single, range(16)))
    assert codes == [201] * 20
    assert len(_ids(http)) == 4 * 40 + 16 == len(_identity_files(rt))


def test_refused_batches_leave_nothing_behind(api) -> None:
    http, rt = api
    assert http.post("/api/v1/devices", json=_entry("old-1")).status_code == 201
    refused = {
        "twice in one batch": ([_entry("n-1"), _entry("n-2"), _entry("n-1", hardware_class="esp32s3")], 422,
                               "devices[2]: device id 'n-1' is also devices[0]"),
        "already registered": ([_entry("n-1"), _entry("old-1")], 409, "device 'old-1' is already registered"),
        "a server user": ([_entry("n-1"), _entry("fleet-server")], 400, "devices[1]: device id 'fleet-server' is "
                          "reserved"),
        "no such profile": ([_entry("n-1"), _entry("n-2", hardware_class="nrf52")], 400,
                            "devices[1]: no hardware profile 'nrf52'"),
    }  # fmt: skip
    for why, (batch, code, detail) in refused.items():
        r = http.post(URL, json={"devices": batch})
        assert r.status_code == code and detail in r.json()["detail"], (why, r.text)
    schema_refused = {  # refused by the schema, each with a message naming the place and the rule
        "empty": ({"devices": []}, "devices: List should have at least 1 item"),
        "one too many": ({"devices": [_entry(f"m-{i:03d}") for i in range(MAX_BATCH + 1)]},
                         f"devices: List should have at most {MAX_BATCH} items"),
        "an id outside the grammar": ({"devices": [_entry("n-1"), _entry("n/2")]}, "devices.1.id: "),
        "a newline after an id": ({"devices": [_entry("n-1\n")]}, "devices.0.id: "),
        "a bad tag": ({"devices": [_entry("n-1", tags={"Site": "a"})]}, "devices.0.tags"),
        "an unknown field": ({"devices": [_entry("n-1")], "force": True}, "force: Extra inputs are not permitted"),
        "no list": ({"devices": {"id": "n-1"}}, "devices: Input should be a valid list"),
    }  # fmt: skip
    for why, (body, detail) in schema_refused.items():
        r = http.post(URL, json=body)
        assert r.status_code == 422 and detail in r.json()["detail"], (why, r.status_code, r.text)
    r = http.post(URL, content=b'{"devices": [' + b" " * (1024 * 1024) + b"]}",
                  headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code == 413 and "max_request_bytes" in r.json()["detail"], r.text
    assert _ids(http) == ["old-1"] and _identity_files(rt) == {"old-1"}
    audited = http.get("/api/v1/audit", params={"action": "device.provision_batch"}).json()
    assert len(audited) == len(refused) and all(e["result"].startswith("refused: ") for e in audited)
    # the largest batch is taken whole
    r = http.post(URL, json={"devices": [_entry(f"m-{i:03d}") for i in range(MAX_BATCH)]})
    assert r.status_code == 201, r.text
    last = r.json()["devices"][-1]["broker"]
    assert _connack(rt, last["username"], last["password"]) == ACCEPTED


def test_a_batch_the_broker_does_not_take_registers_no_device(api) -> None:
    http, rt = api
    broker = rt.broker
    assert broker is not None
    batch = [_entry(f"f-{i:02d}") for i in range(30)]
    # one device's shard cannot hold its file: the others' files are already written when that one fails
    shard = broker.identity_file("f-17").parent
    moved = shard.with_name(shard.name + ".away")
    os.rename(shard, moved)
    shard.write_bytes(b"")
    try:
        r = http.post(URL, json={"devices": batch})
    finally:
        shard.unlink()
        os.rename(moved, shard)
    assert r.status_code == 503 and "no device of the batch was registered" in r.json()["detail"], r.text
    assert _ids(http) == [] and _identity_files(rt) == set()
    broker.stop()
    try:
        r = http.post(URL, json={"devices": batch})
        assert r.status_code == 503 and "no device of the batch was registered" in r.json()["detail"], r.text
    finally:
        with Session(rt.engine) as s:
            broker.start(devices.all_hashes(s))
    assert _ids(http) == [] and _identity_files(rt) == set()
    results = [e["result"] for e in http.get("/api/v1/audit", params={"action": "device.provision_batch"}).json()]
    assert len(results) == 2 and all(x.startswith("failed: the broker did not take") for x in results), results
    r = http.post(URL, json={"devices": batch})  # the same batch, once the broker is back
    assert r.status_code == 201, r.text
    for d in r.json()["devices"]:
        assert _connack(rt, d["broker"]["username"], d["broker"]["password"]) == ACCEPTED


def test_a_batch_needs_an_operator(api) -> None:
    http, _ = api
    viewer = http.post("/api/v1/tokens", json={"name": "v", "role": "viewer"}).json()["secret"]
    body = {"devices": [_entry("v-1")]}
    assert http.post(URL, json=body, headers={"Authorization": f"Bearer {viewer}"}).status_code == 403
    assert http.post(URL, json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert _ids(http) == []



def test_the_schema_states_the_batch_limits(api) -> None:
    http, _ = api
    spec = http.get("/openapi.json").json()
    devices = spec["components"]["schemas"]["DeviceBatchCreate"]["properties"]["devices"]
    assert (devices["minItems"], devices["maxItems"]) == (1, MAX_BATCH)
    assert devices["items"] == {"$ref": "#/components/schemas/DeviceCreate"}
    op = spec["paths"]["/api/v1/devices/batch"]["post"]
    assert {"201", "409", "413", "422", "503"} <= set(op["responses"])


def test_one_wrong_answer_in_a_batch_fails_the_whole_confirmation(api) -> None:
    """The broker's answers are checked one by one: a file the plugin reads as absent fails the batch."""
    _, rt = api
    sink = rt.credential_sink
    ids = [f"w-{i:02d}" for i in range(20)]
    sink.write_many({d: hash_password(d) for d in ids})
    sink.confirm_many(ids, True)  # all present: confirmed
    assert rt.broker is not None
    rt.broker.identity_file("w-13").unlink()  # the plugin will read it as absent
    with pytest.raises(BrokerError, match="the broker reads 'w-13''s identity as absent, not present"):
        sink.confirm_many(ids, True)
    sink.write_many(dict.fromkeys(ids))
    sink.confirm_many(ids, False)  # all removed: confirmed as absent
