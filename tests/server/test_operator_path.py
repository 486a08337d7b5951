"""The operator's path with the real commands: `fleetctl bundle build` -> `fleet-server serve` -> `fleetctl
rollout upload` -> `fleetctl devices provision` -> `fleetctl rollout create/wait`, devices scripted with paho.
Midway the server is killed with SIGKILL and started again: its broker keeps running and is adopted, its MQTT
session holds the reports that arrived meanwhile, and the rollout completes with nothing lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tinyfleet.bundles import TrustedKeys
from tinyfleet.server.workers.broker_process import free_port

from .srv_device import ScriptedDevice
from .srv_fleet import wait_until

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "models/sample"
TOKEN = "operator-path-admin"


def cli(tool: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    mod = {"fleetctl": "tinyfleet.fleetctl.main", "fleet-server": "tinyfleet.server.main"}[tool]
    return subprocess.run([sys.executable, "-c", f"from {mod} import main; main()", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def build(tmp: Path, bundle_id: str, counter: int, firmware: Path) -> Path:
    out = tmp / f"{bundle_id}.tfb"
    r = cli("fleetctl", "bundle", "build", "--out", str(out), "--key", str(tmp / "keys/signing.key.pem"),
            "--id", bundle_id, "--hw", "stm32l4", "--counter", str(counter), "--firmware", str(firmware),
            "--firmware-version", "1.0.0", "--model", str(SAMPLE / "vibration_int8.tflite"), "--model-version",
            f"{counter}.0.0", "--thresholds", str(SAMPLE / "thresholds.json"), "--calibration",
            str(SAMPLE / "calibration.json"), "--val", str(SAMPLE / "val.npz"), "--fe-version", "vib-window-v1",
            "--max-latency-ms", "40", "--peak-ram", "48000", env={})  # fmt: skip
    assert r.returncode == 0, r.stderr
    return out


def start_server(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", "from tinyfleet.server.main import main; main()", "serve"],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=open(log, "ab"),  # noqa: SIM115
    )  # fmt: skip


def test_operator_path_with_server_crash(tmp_path: Path) -> None:
    assert cli("fleetctl", "keys", "init", "--dir", str(tmp_path / "keys"), env={}).returncode == 0
    fw = tmp_path / "firmware.bin"
    fw.write_bytes(os.urandom(20000))
    v1, v2 = build(tmp_path, "vib-1.0", 1, fw), build(tmp_path, "vib-1.1", 2, fw)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "TINYFLEET_DATA_DIR": str(tmp_path / "data"),
        "TINYFLEET_API_PORT": str(port),
        "TINYFLEET_BOOTSTRAP_ADMIN_TOKEN": TOKEN,
        "TINYFLEET_TRUSTED_KEY_FILES": json.dumps([str(tmp_path / "keys/signing.pub.pem")]),
        "TINYFLEET_ENGINE_INTERVAL_S": "0.2",
    }
    op = {"TINYFLEET_SERVER": url, "TINYFLEET_TOKEN": TOKEN}
    server = start_server(env, tmp_path / "server.log")
    devices: list[ScriptedDevice] = []
    try:
        assert wait_until(lambda: _healthy(url), 30), (tmp_path / "server.log").read_text()[-2000:]
        for b in (v1, v2):
            r = cli("fleetctl", "rollout", "upload", str(b), env=op)
            assert r.returncode == 0 and r.stdout.startswith("stored "), r.stderr
        keys = TrustedKeys.from_pem_files([tmp_path / "keys/signing.pub.pem"])
        for i in range(4):
            r = cli("fleetctl", "devices", "provision", f"dev-{i}", "--hw", "stm32l4", "--tag", f"site=s{i % 2}",
                    env=op)  # fmt: skip
            assert r.returncode == 0, r.stderr
            creds = json.loads(r.stdout)["broker"]
            dev = None
            for _ in range(50):
                dev = ScriptedDevice(creds["port"], f"dev-{i}", creds["password"], "stm32l4", keys, v1.read_bytes(),
                                     hold_reports=True)  # fmt: skip
                if wait_until(lambda d=dev: d.client.is_connected(), 1):
                    break
                dev.close()
            devices.append(dev)
        stages = tmp_path / "stages.json"  # per-stage gates: the canary must have two successes
        stages.write_text(json.dumps([{"percent": 50, "install": {"min_successes": 2}}, {"percent": 100}]))
        r = cli("fleetctl", "rollout", "create", "--bundle", "vib-1.1", "--stages-file", str(stages), env=op)
        assert r.returncode == 0 and r.stdout.startswith("rollout 1: running, 4 devices targeted"), r.stderr
        # the canary (one device per site) installs; its reports are held back
        assert wait_until(lambda: sum(len(d.sent_reports) == 5 for d in devices) == 2, 30)
        server.send_signal(signal.SIGKILL)
        server.wait()
        for d in devices:  # the broker still runs: these reach the server's session while it is down
            d.hold_reports = False
            d.release_reports()
        server = start_server(env, tmp_path / "server.log")
        assert wait_until(lambda: _healthy(url), 30)
        r = cli("fleetctl", "rollout", "wait", "1", "--timeout", "60", env=op)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "completed" in r.stdout.splitlines()[-1]
        r = cli("fleetctl", "rollout", "status", "1", "--devices", env=op)
        assert r.stdout.count("succeeded") == 4, r.stdout
        assert all(d.running_digest.hex() in r2 for d in devices for r2 in [_get(url, "/bundles/vib-1.1")["digest"]])
        r = cli("fleetctl", "devices", "list", "--json", env=op)
        assert {d["running_bundle"] for d in json.loads(r.stdout)} == {"vib-1.1"}
        r = cli("fleetctl", "rollout", "pause", "1", env=op)
        assert r.returncode == 1 and "rollout 1 is completed; cannot pause it (only when running)" in r.stderr
    finally:
        for d in devices:
            d.close()
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    pid_file = tmp_path / "data/broker/mosquitto.pid"
    assert not pid_file.exists() or not Path(f"/proc/{pid_file.read_text().strip()}").exists()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _get(url: str, path: str) -> dict:
    return httpx.get(url + "/api/v1" + path, headers={"Authorization": f"Bearer {TOKEN}"}).json()
