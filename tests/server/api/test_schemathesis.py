"""Property-based run of the OpenAPI spec (schemathesis): no 5xx, responses match their schemas.

Bounded: a fixed number of generated cases per operation, against a real runtime (SQLite, Mosquitto)."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tinyfleet.bundles import generate_private_key
from tinyfleet.server.api.app import create_app
from tinyfleet.server.runtime import FleetRuntime
from tinyfleet.server.settings import Settings

from ..srv_bundles import make_bundle, write_public_key

TOKEN = "schemathesis-admin"
_state: dict[str, object] = {}


def _app():
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="tf-schemathesis-"))
    key = generate_private_key()
    pub = write_public_key(key, tmp / "pub.pem")
    rt = FleetRuntime(Settings(data_dir=tmp / "data", bootstrap_admin_token=TOKEN, trusted_key_files=[pub],
                               run_model_gate=False))  # fmt: skip
    _state.update(rt=rt, key=key, tmp=tmp)
    return create_app(rt, manage_runtime=False)


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def running_server():
    rt = _state["rt"]
    rt.start()  # type: ignore[attr-defined]
    from fastapi.testclient import TestClient

    with TestClient(create_app(rt, manage_runtime=False)) as http:  # type: ignore[arg-type]
        h = {"Authorization": f"Bearer {TOKEN}"}
        http.post("/api/v1/devices", json={"id": "d1", "hardware_class": "stm32l4", "tags": {"site": "a"}}, headers=h)
        data = make_bundle(_state["key"], "b1")  # type: ignore[arg-type]
        http.post("/api/v1/bundles", content=data, headers={**h, "Content-Type": "application/octet-stream"})
    yield
    rt.stop()  # type: ignore[attr-defined]
    import shutil

    shutil.rmtree(_state["tmp"], ignore_errors=True)  # type: ignore[arg-type]


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_schema(case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS)
