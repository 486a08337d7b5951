"""Devices provisioned at the same moment all get working broker credentials (no 500, none lost).

64 at once: more requests than the API's worker threads (40) and the database pool's base size, the load under
which requests holding connections while waiting for threads once stalled the threads waiting for
connections until the pool timed out (HTTP 500)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastapi.testclient import TestClient

from tinyfleet.server.api.app import create_app
from tinyfleet.server.runtime import FleetRuntime
from tinyfleet.server.settings import Settings

TOKEN = "concurrency-admin"
N = 192


def test_concurrent_provisioning_keeps_every_credential(tmp_path: Path, db_url: str) -> None:
    rt = FleetRuntime(
        Settings(data_dir=tmp_path / "data", database_url=db_url, bootstrap_admin_token=TOKEN, run_model_gate=False)
    )
    rt.start()
    try:
        with TestClient(create_app(rt, manage_runtime=False), raise_server_exceptions=False) as http:

            def provision(i: int) -> int:
                body = {"id": f"conc-{i:03d}", "hardware_class": "stm32l4", "tags": {"site": "a"}}
                return http.post("/api/v1/devices", json=body, headers={"Authorization": f"Bearer {TOKEN}"}).status_code

            with ThreadPoolExecutor(64) as pool:
                codes = list(pool.map(provision, range(N)))
        assert codes == [201] * N
        assert rt.broker is not None
        for i in range(N):
            assert rt.broker.identity_file(f"conc-{i:03d}").is_file()
    finally:
        rt.stop()
