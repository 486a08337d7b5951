"""Out-of-range numbers in paths and queries are 4xx on every endpoint, never a database overflow (5xx)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tinyfleet.server.api.app import create_app
from tinyfleet.server.runtime import FleetRuntime
from tinyfleet.server.settings import Settings

TOKEN = "bounds-admin"


@pytest.mark.parametrize("value", [str(2**70), str(2**63), "-1", "0", "1e9", "abc"])
def test_every_endpoint_rejects_out_of_range_numbers(tmp_path: Path, db_url: str, value: str) -> None:
    rt = FleetRuntime(
        Settings(data_dir=tmp_path / "data", database_url=db_url, bootstrap_admin_token=TOKEN, run_model_gate=False)
    )
    rt.start()
    try:
        with TestClient(create_app(rt, manage_runtime=False), raise_server_exceptions=False) as http:
            spec = http.get("/openapi.json").json()
            failures = []
            for path, ops in spec["paths"].items():
                url = re.sub(r"{\w+}", value, path)
                for method in ops:
                    r = http.request(
                        method.upper(), url, headers={"Authorization": f"Bearer {TOKEN}"}, json={},
                        params={"limit": value, "offset": value, "since": value},
                    )  # fmt: skip
                    if r.status_code >= 500:
                        failures.append(f"{method.upper()} {url}: {r.status_code}")
            assert not failures
    finally:
        rt.stop()
