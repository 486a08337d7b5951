from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

FLEETCTL = Path(sys.executable).parent / "fleetctl"


@pytest.fixture
def fleetctl() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the installed `fleetctl` console script, as an operator would."""

    def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(FLEETCTL), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120)

    return run


def one_line_error(r: subprocess.CompletedProcess[str]) -> str:
    """Assert the failure was reported as a single line on stderr, no traceback, and return it."""
    assert r.returncode != 0
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


class LiveServer:
    """A real `fleet-server serve` (its own Mosquitto, SQLite) with a trusted key, for fleetctl against the API."""

    def __init__(self, tmp: Path) -> None:
        from tinyfleet.bundles.signing import generate_private_key, public_pem
        from tinyfleet.simulator.server_proc import ADMIN_TOKEN, ServerProcess

        self.key = generate_private_key()
        self.pub = tmp / "signing.pub.pem"
        self.pub.write_bytes(public_pem(self.key.public_key()))
        self.proc = ServerProcess(tmp / "server", self.pub)
        self.proc.env["TINYFLEET_RUN_MODEL_GATE"] = "false"  # test bundles carry dummy models
        from tinyfleet.bundles.signing import private_pem

        self.key_file = tmp / "signing.key.pem"
        self.key_file.write_bytes(private_pem(self.key))
        self.proc.env["TINYFLEET_SIGNING_KEY_FILE"] = str(self.key_file)  # calibration bundles built by the server
        self.token = ADMIN_TOKEN
        self.env = {"TINYFLEET_SERVER": self.proc.url, "TINYFLEET_TOKEN": ADMIN_TOKEN}

    @property
    def url(self) -> str:
        return self.proc.url

    def api(self, method: str, path: str, headers: dict[str, str] | None = None, **kw: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        return httpx.request(method, self.url + "/api/v1" + path, headers=headers, timeout=60, **kw)  # type: ignore[arg-type]

    def upload(self, bundle_id: str, counter: int = 1, **kw: object) -> bytes:
        from tests.server.srv_bundles import make_bundle

        data = make_bundle(self.key, bundle_id, counter=counter, **kw)  # type: ignore[arg-type]
        r = self.api("POST", "/bundles", content=data, headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
        return data


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    srv = LiveServer(tmp_path)
    srv.proc.start()
    try:
        yield srv
    finally:
        srv.proc.stop()


@pytest.fixture
def fleetctl_env() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `fleetctl` with extra environment variables (TINYFLEET_SERVER, TINYFLEET_TOKEN)."""

    def run(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(FLEETCTL), *map(str, args)], capture_output=True, text=True, timeout=120,
                              env={**os.environ, **env})  # fmt: skip

    return run
