"""A second `fleet-server serve` on the same data directory, or on a port in use, leaves the first server alone:
one line saying what is in use, exit 3, and nothing touched (broker, credentials, database)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tinyfleet.server.workers.broker_process import free_port

from .srv_fleet import wait_until
from .srv_mqtt_client import TestClient as MqttClient

TOKEN = "second-server-admin"


def _serve(env: dict[str, str], **kw) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", "from tinyfleet.server.main import main; main()", "serve"],
                            env={**os.environ, **env}, text=True, **kw)  # fmt: skip


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_second_server_leaves_the_first_alone(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"TINYFLEET_DATA_DIR": str(tmp_path / "data"), "TINYFLEET_API_PORT": str(port),
           "TINYFLEET_BOOTSTRAP_ADMIN_TOKEN": TOKEN}  # fmt: skip
    first = _serve(env, stderr=open(tmp_path / "first.log", "w"))  # noqa: SIM115
    try:
        assert wait_until(lambda: _healthy(url), 30), (tmp_path / "first.log").read_text()[-2000:]
        r = httpx.post(url + "/api/v1/devices", json={"id": "d1", "hardware_class": "stm32l4"},
                       headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)  # fmt: skip
        assert r.status_code == 201, r.text
        creds = r.json()["broker"]
        broker_pid = (tmp_path / "data/broker/mosquitto.pid").read_text().strip()

        for other_env, message in (
            ({**env, "TINYFLEET_API_PORT": str(free_port())},
             f"fleet-server: data directory {tmp_path / 'data'} is in use by another fleet-server (pid {first.pid})"),
            ({**env, "TINYFLEET_DATA_DIR": str(tmp_path / "other")},
             f"fleet-server: API address 127.0.0.1:{port} is in use (Address already in use); set TINYFLEET_API_PORT"),
        ):  # fmt: skip
            second = _serve(other_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = second.communicate(timeout=60)
            assert second.returncode == 3, err
            assert err.strip() == message, err
        assert not (tmp_path / "other/broker").exists()  # refused before the broker was touched

        # the first server still runs, on the same broker, and the device's credentials still work
        assert _healthy(url)
        assert (tmp_path / "data/broker/mosquitto.pid").read_text().strip() == broker_pid
        assert Path(f"/proc/{broker_pid}").exists()
        dev = MqttClient(creds["port"], "d1", creds["password"])
        try:
            assert dev.wait_connected()
        finally:
            dev.close()
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(30)
