"""A running fleet server (real Mosquitto, real database) with scripted devices, for end-to-end tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient as HttpClient

from tinyfleet.bundles import TrustedKeys, generate_private_key
from tinyfleet.bundles.signing import private_pem
from tinyfleet.server.api.app import create_app
from tinyfleet.server.runtime import FleetRuntime
from tinyfleet.server.settings import Settings

from .srv_bundles import write_public_key
from .srv_device import ScriptedDevice

ADMIN = "e2e-admin-token"


class Fleet:
    def __init__(self, tmp: Path, db_url: str) -> None:
        self.tmp, self.db_url = tmp, db_url
        self.key: ec.EllipticCurvePrivateKey = generate_private_key()
        self.pub = write_public_key(self.key, tmp / "signing.pub.pem")
        self.key_file = tmp / "signing.key.pem"
        self.key_file.write_bytes(private_pem(self.key))
        self.keys = TrustedKeys.from_pem_files([self.pub])
        self.devices: dict[str, ScriptedDevice] = {}
        self.passwords: dict[str, str] = {}
        self.overrides: dict[str, Any] = {}  # more settings for the next server()

    def settings(self) -> Settings:
        return Settings(**{
            "data_dir": self.tmp / "data",
            "database_url": self.db_url,
            "bootstrap_admin_token": ADMIN,
            "trusted_key_files": [self.pub],
            "signing_key_file": self.key_file,
            "run_model_gate": False,
            "engine_interval_s": 0.1,
            **self.overrides,
        })

    @contextmanager
    def server(self) -> Iterator[tuple[HttpClient, FleetRuntime]]:
        rt = FleetRuntime(self.settings())
        with HttpClient(create_app(rt)) as http:
            http.headers["Authorization"] = f"Bearer {ADMIN}"
            yield http, rt

    def provision(self, http: HttpClient, device_id: str, hw: str, tags: dict[str, str]) -> str:
        r = http.post("/api/v1/devices", json={"id": device_id, "hardware_class": hw, "tags": tags})
        assert r.status_code == 201, r.text
        self.passwords[device_id] = r.json()["broker"]["password"]
        return self.passwords[device_id]

    def start_device(self, port: int, device_id: str, hw: str, running: bytes | None, **kw: Any) -> ScriptedDevice:
        deadline = time.monotonic() + 5
        while True:  # the broker reloads its password file a moment after provisioning
            dev = ScriptedDevice(port, device_id, self.passwords[device_id], hw, self.keys, running, **kw)
            if wait_until(lambda d=dev: d.client.is_connected(), 1.0):
                break
            dev.close()
            assert time.monotonic() < deadline, f"{device_id} cannot connect"
        self.devices[device_id] = dev
        return dev

    def upload(self, http: HttpClient, data: bytes) -> dict[str, Any]:
        r = http.post("/api/v1/bundles", content=data, headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
        return r.json()

    def close(self) -> None:
        for d in self.devices.values():
            d.close()


def wait_until(pred: Callable[[], bool], timeout: float = 15.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return pred()
