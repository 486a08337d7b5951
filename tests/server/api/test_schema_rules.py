"""The rules /openapi.json states are the ones the server enforces, at their edges (the fuzz in
test_schema_fuzz.py draws at random; these are the cases issue 12 named)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient as HttpClient

from tinyfleet.server.api.app import create_app
from tinyfleet.server.runtime import FleetRuntime
from tinyfleet.server.settings import Settings

ADMIN = "admin-secret-token"


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("schema-rules") / "data"
    rt = FleetRuntime(Settings(data_dir=data, bootstrap_admin_token=ADMIN))
    with HttpClient(create_app(rt)) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN}"
        r = client.post("/api/v1/devices", json={"id": "dev-1", "hardware_class": "stm32l4", "tags": {"site": "a"}})
        assert r.status_code == 201, r.text
        yield client


def _property(http: HttpClient, model: str, name: str) -> dict[str, object]:
    return http.get("/openapi.json").json()["components"]["schemas"][model]["properties"][name]  # type: ignore[no-any-return]


def test_device_id_grammar_and_reserved_ids_are_in_the_schema(http: HttpClient) -> None:
    prop = _property(http, "DeviceCreate", "id")
    assert prop["pattern"] == "^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,63})$"
    assert prop["not"] == {"enum": ["fleet-server"]}
    assert _property(http, "DeviceCreate", "hardware_class")["enum"] == ["esp32s3", "stm32l4"]
    r = http.post("/api/v1/devices", json={"id": "dev-2\n", "hardware_class": "stm32l4"})
    assert r.status_code == 422 and r.json()["detail"].startswith("id: device id 'dev-2\\n' must be 1-64 of")
    r = http.post("/api/v1/devices", json={"id": "fleet-server", "hardware_class": "stm32l4"})
    assert r.status_code == 400 and "reserved" in r.json()["detail"]


def test_tags_names_and_values_are_patterns_of_the_schema(http: HttpClient) -> None:
    tags = _property(http, "DeviceCreate", "tags")
    assert tags["additionalProperties"] is False and tags["maxProperties"] == 16
    r = http.post("/api/v1/devices", json={"id": "dev-3", "hardware_class": "stm32l4", "tags": {"Site": "a"}})
    assert r.status_code == 422 and r.json()["detail"] == "tags.Site.[key]: tag name 'Site' must be 1-32 of a-z 0-9 _ -"
    r = http.post("/api/v1/devices", json={"id": "dev-3", "hardware_class": "stm32l4", "tags": {"site\n": "a"}})
    assert r.status_code == 422 and r.json()["detail"].startswith("tags.'site\\n'.[key]:")  # one printable line
    many = {f"t{i}": "x" for i in range(16)}
    assert http.patch("/api/v1/devices/dev-1/tags", json={"set": many}).status_code == 409  # 17 with site


def test_tag_filters(http: HttpClient) -> None:
    assert http.get("/api/v1/devices", params={"tag": ""}).status_code == 422
    assert [d["id"] for d in http.get("/api/v1/devices", params={"tag": "site=a"}).json()] == ["dev-1"]
    assert http.get("/api/v1/devices", params=[("tag", "site=a"), ("tag", "site=b")]).json() == []
    assert http.get("/api/v1/devices", params={"hardware_class": ""}).status_code == 422


def test_token_names_and_base64(http: HttpClient) -> None:
    r = http.post("/api/v1/tokens", json={"name": "kö", "role": "viewer"})
    assert r.status_code == 422 and r.json()["detail"].startswith("name: token name 'kö' must be 1-64 of")
    assert "^(?:" in _property(http, "TokenCreate", "name")["pattern"]  # type: ignore[operator]
    assert _property(http, "PartIn", "data_base64")["pattern"].startswith("^(?:[A-Za-z0-9+/]{4})*")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("percents", "why"),
    [((10, 50), "stages: the last stage must reach 100 percent, not 50"),
     ((50, 10, 100), "stages: stage 2: percent 10 must be above the previous (50) and <= 100")],
)  # fmt: skip
def test_stages_that_do_not_rise_to_100_are_a_422_naming_the_stage(http: HttpClient, percents, why) -> None:
    body = {"bundle_id": "b", "stages": [{"percent": p} for p in percents]}
    r = http.post("/api/v1/rollouts", json=body)
    assert r.status_code == 422 and r.json()["detail"] == why
    assert "the last one 100" in _property(http, "RolloutCreate", "stages")["description"]  # type: ignore[operator]


def test_a_scalar_query_parameter_given_twice_is_refused(http: HttpClient) -> None:
    r = http.get("/api/v1/cohorts", params=[("bundle_id", "a"), ("bundle_id", "b")])
    assert r.status_code == 422
    assert r.json()["detail"] == "query parameter 'bundle_id' is given 2 times; it takes one value"
    assert http.get("/api/v1/cohorts", params=[("by", "site"), ("by", "temp")]).status_code == 200


def test_options_and_405_name_every_method_of_the_path(http: HttpClient) -> None:
    r = http.options("/api/v1/devices/dev-1")
    assert r.status_code == 204 and r.headers["allow"] == "DELETE, GET, OPTIONS"
    r = http.put("/api/v1/devices", json={})
    assert r.status_code == 405 and r.headers["allow"] == "GET, OPTIONS, POST"
    assert r.json() == {"detail": "PUT is not a method of this path"}
    assert http.options("/api/v1/bundles/build").headers["allow"] == "OPTIONS, POST"  # the concrete path wins
