"""Schema-driven fuzzing of the whole API (schemathesis): what /openapi.json says is what the server enforces.

Every operation of /openapi.json, a bounded number of generated cases each (derandomized: the same cases on
every run), against a real runtime (SQLite, the embedded Mosquitto). A case passes when the server answers no
5xx, each answer's status, content type, headers and body are the ones the schema documents, every request
the schema calls valid is accepted (2xx, or 401/403/404/409 for state it cannot know) and every request it
calls invalid is refused. Token revocation and device deletion are fuzzed too: the token the run uses is made
valid again before each case, so revoking it (or any other) cannot end the run.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    allow_header_conformance,
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)
from sqlmodel import Session

from tinyfleet.bundles import generate_private_key
from tinyfleet.server.api.app import create_app
from tinyfleet.server.db.models import Device
from tinyfleet.server.runtime import FleetRuntime
from tinyfleet.server.services import audit, devices, tokens
from tinyfleet.server.settings import Settings

from ..srv_bundles import make_bundle, write_public_key

ADMIN = "fuzz-admin-secret"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, positive_data_acceptance, negative_data_rejection, unsupported_method,
          allow_header_conformance]  # fmt: skip

_TMP = Path(tempfile.mkdtemp(prefix="tf-schema-fuzz-"))
_KEY = generate_private_key()
_RUNTIME = FleetRuntime(
    Settings(data_dir=_TMP / "data", bootstrap_admin_token=ADMIN, run_model_gate=False,
             trusted_key_files=[write_public_key(_KEY, _TMP / "pub.pem")])  # fmt: skip
)
_APP: FastAPI = create_app(_RUNTIME, manage_runtime=False)
# What a schema cannot say about bytes (is this a bundle signed by a trusted key, a model the gate takes; is
# this PEM a CA, does this file hold a certificate and its key) is answered 422 by the operations that take
# them, as their schema documents: a refusal there is allowed.
_CONTENT_CHECKED = [
    {"include-path": path, "include-method": "POST",
     "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422"]}}}
    for path in ("/api/v1/bundles", "/api/v1/bundles/build", "/api/v1/fleet-ca/anchors", "/api/v1/fleet-ca/switch")
]  # fmt: skip
CONFIG = schemathesis.Config.from_dict(
    {
        "auth": {"openapi": {"HTTPBearer": {"bearer": ADMIN}}},
        "phases": {"coverage": {"generate-duplicate-query-parameters": True}},
        "operations": _CONTENT_CHECKED,
    }
)
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP, config=CONFIG)


DEVICES = {"sensor-0000": {"site": "a"}, "sensor-0001": {"site": "b"}, "sensor-0002": {}}
TOKENS = ("bootstrap-admin", "second-admin", "ops", "watcher")  # bootstrap-admin: the one the run uses


@pytest.fixture(scope="module", autouse=True)
def fleet() -> Iterator[None]:
    """The runtime with something to find: devices (one in a rollout), a bundle, tokens of every role."""
    _RUNTIME.start()
    h = {"Authorization": f"Bearer {ADMIN}"}
    with TestClient(_APP) as http:
        for device_id, tags in DEVICES.items():
            r = http.post("/api/v1/devices", json={"id": device_id, "hardware_class": "stm32l4", "tags": tags},
                          headers=h)  # fmt: skip
            assert r.status_code == 201, r.text
        r = http.post("/api/v1/bundles", content=make_bundle(_KEY, "b1"),
                      headers={**h, "Content-Type": "application/octet-stream"})  # fmt: skip
        assert r.status_code == 201, r.text
        r = http.post("/api/v1/rollouts", json={"bundle_id": "b1", "target": {"device_ids": ["sensor-0000"]}},
                      headers=h)  # fmt: skip
        assert r.status_code == 201, r.text
        for name, role in (("ops", "operator"), ("watcher", "viewer"), ("second-admin", "admin")):
            assert http.post("/api/v1/tokens", json={"name": name, "role": role}, headers=h).status_code == 201
    yield
    _RUNTIME.stop()
    shutil.rmtree(_TMP, ignore_errors=True)


def _rising_to_100(body: object) -> None:
    """A valid rollout's stages rise and end at 100 (documented on RolloutCreate.stages; JSON Schema cannot
    compare items): generated stages are put in that order, so the run still asks every such request be
    accepted."""
    stages = body.get("stages") if isinstance(body, dict) else None
    if not stages:
        return
    by_percent: dict[float, dict[str, object]] = {}
    for stage in stages:
        by_percent.setdefault(stage["percent"], stage)
    rising = [by_percent[p] for p in sorted(by_percent)]
    rising[-1] = {**rising[-1], "percent": 100}
    body["stages"] = rising  # type: ignore[index]


def _aim_at_the_fleet(case: schemathesis.Case) -> None:
    """Every other drawn device id and token name (any string is valid there) becomes one the fleet holds, so
    deletions and revocations really happen, of the run's own token too, not only as 404s."""
    params = case.path_parameters or {}
    for key, pool in (("device_id", tuple(DEVICES)), ("name", TOKENS)):
        value = params.get(key)
        pick = sum(map(ord, value)) % (2 * len(pool)) if isinstance(value, str) else len(pool)
        if pick < len(pool):
            params[key] = pool[pick]


def _restore_the_fleet() -> None:
    """The run's admin token valid and the fleet's devices registered again, whatever the last case did."""
    with Session(_RUNTIME.engine) as session:
        tokens.ensure_bootstrap(session, ADMIN)
        for device_id, tags in DEVICES.items():
            if session.get(Device, device_id) is None:
                devices.provision(session, _RUNTIME.credential_sink, device_id, "stm32l4", tags)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_does_what_its_schema_says(case: schemathesis.Case) -> None:
    _restore_the_fleet()
    if case.meta and case.meta.generation.mode.is_positive:
        _aim_at_the_fleet(case)
        if case.operation.label == "POST /api/v1/rollouts":
            _rising_to_100(case.body)
    case.call_and_validate(checks=CHECKS)


def test_the_run_revoked_tokens_and_deleted_devices() -> None:
    """After the run above (same module, run first): revocations and deletions happened for real, the run's
    own token among them."""
    with Session(_RUNTIME.engine) as session:
        revoked = audit.list_entries(session, limit=1000, offset=0, action="token.revoke", actor=None)
        deleted = audit.list_entries(session, limit=1000, offset=0, action="device.delete", actor=None)
    revoked_ok = {e.target for e in revoked if e.result == "ok"}
    # the run's own token, and others of the fleet's: which ones depends on the cases the schema yields and on
    # the state earlier cases left (a fresh clone and a worktree with a hypothesis database differ)
    assert "bootstrap-admin" in revoked_ok and revoked_ok & set(TOKENS[1:]), revoked_ok
    deleted_ok = {e.target for e in deleted if e.result == "ok"}
    assert deleted_ok & set(DEVICES), deleted_ok  # fleet devices, really deleted (not only 404s)
