"""`fleet-sim run` joins a running fleet-server: provisions through the API, devices come online, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tinyfleet.bundles.signing import generate_private_key, public_pem
from tinyfleet.simulator.server_proc import ADMIN_TOKEN, ServerProcess

from ..server.srv_bundles import make_bundle
from ..server.srv_fleet import wait_until
from .sim_factory import factory_args

FLEET_SIM = str(Path(sys.executable).with_name("fleet-sim"))


def test_run_provisions_devices_that_come_online(tmp_path: Path) -> None:
    key, pub, factory = factory_args(tmp_path)
    server = ServerProcess(tmp_path / "server", pub)
    server.start()
    try:
        out = subprocess.run(
            [FLEET_SIM, "run", "--devices", "5", "--api", server.url, "--token", ADMIN_TOKEN, "--trust", str(pub),
             *factory, "--tags", "site=plant-b", "--duration", "8", "--prefix", "cli"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip(), out.stderr
        result = json.loads(out.stdout.strip().splitlines()[-1])
        assert result["devices"] == 5 and result["by_state"] == {"IDLE": 5}
        assert result["by_bundle"] == {"vibration-1.0.0-esp32s3": 3, "vibration-1.0.0-stm32l4": 2}
        views = httpx.get(server.url + "/api/v1/devices", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()
        assert sorted(v["id"] for v in views) == [f"cli-{i:05d}" for i in range(5)]
        assert all(v["tags"]["site"] == "plant-b" and v["running_bundle"].startswith("vibration-1.0.0") for v in views)
        # the devices said goodbye when the run ended: no ghosts left online
        assert wait_until(lambda: not any(v["online"] for v in httpx.get(
            server.url + "/api/v1/devices", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()), 15)

        # a second run on the same ids, in two batches of provisioning: the first (cli-00000..99) is refused as a
        # whole since cli-00000..4 exist (409), the second (cli-00100..104) gets registered, then removed again
        again = subprocess.run(
            [FLEET_SIM, "run", "--devices", "105", "--api", server.url, "--token", ADMIN_TOKEN, "--trust", str(pub),
             *factory, "--duration", "1", "--prefix", "cli"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert again.returncode == 2 and "HTTP 409" in again.stderr and "Traceback" not in again.stderr
        assert "1 of 2 batches of up to 100 devices failed; the 5 registered by this run were removed" in again.stderr
        assert len(again.stderr.strip().splitlines()) == 1, again.stderr
        views = httpx.get(server.url + "/api/v1/devices", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()
        assert sorted(v["id"] for v in views) == [f"cli-{i:05d}" for i in range(5)]

        # two worker processes: the same JSON summary, merged over both
        mp = subprocess.run(
            [FLEET_SIM, "run", "--devices", "4", "--workers", "2", "--api", server.url, "--token", ADMIN_TOKEN,
             "--trust", str(pub), *factory, "--duration", "8", "--prefix", "mp"],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert mp.returncode == 0, mp.stderr
        result = json.loads(mp.stdout.strip().splitlines()[-1])
        assert sorted(result) == ["by_bundle", "by_state", "devices", "online", "simulated_s"]
        assert result["devices"] == 4 and result["by_state"] == {"IDLE": 4} and result["online"] == 4
        assert result["by_bundle"] == {"vibration-1.0.0-esp32s3": 2, "vibration-1.0.0-stm32l4": 2}
        # worker 0 runs mp-00000 and mp-00002 (both exist: it fails), worker 1 mp-00001 and mp-00003 (deleted
        # here, so it registers them): the run fails and worker 1's devices are removed again
        for dev in ("mp-00001", "mp-00003"):
            httpx.delete(f"{server.url}/api/v1/devices/{dev}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        mp = subprocess.run(
            [FLEET_SIM, "run", "--devices", "4", "--workers", "2", "--api", server.url, "--token", ADMIN_TOKEN,
             "--trust", str(pub), *factory, "--duration", "1", "--prefix", "mp"],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert mp.returncode == 2 and "HTTP 409" in mp.stderr and "Traceback" not in mp.stderr, mp.stderr
        assert "every device this run registered was removed again" in mp.stderr
        assert len(mp.stderr.strip().splitlines()) == 1, mp.stderr
        views = httpx.get(server.url + "/api/v1/devices", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()
        assert sorted(v["id"] for v in views if v["id"].startswith("mp-")) == ["mp-00000", "mp-00002"]

        # a factory bundle larger than the board's update bank: refused before anything is registered
        big = tmp_path / "big.tfb"
        big.write_bytes(make_bundle(key, "too-big", firmware=b"F" * 600_000))
        out = subprocess.run(
            [FLEET_SIM, "run", "--devices", "3", "--hw", "stm32l4:100%", "--api", server.url, "--token", ADMIN_TOKEN,
             "--trust", str(pub), "--factory", str(big), "--duration", "1", "--prefix", "big"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 2 and "Traceback" not in out.stderr
        assert out.stderr.strip() == (f"fleet-sim: error: {big} is {big.stat().st_size} bytes; a stm32l4 update "
                                      "bank holds 524288 bytes")  # fmt: skip
        views = httpx.get(server.url + "/api/v1/devices", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()
        assert len(views) == 7
    finally:
        server.stop()


def test_run_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    pub = tmp_path / "k.pem"
    pub.write_bytes(public_pem(generate_private_key().public_key()))
    junk = tmp_path / "junk.tfb"
    junk.write_bytes(b"not a bundle")
    cases = [
        (["--hw", "esp32s3:70%,stm32l4:20%"], "adding up to 100%"),
        (["--factory", str(junk)], "is not a usable bundle"),
        (["--factory", str(tmp_path / "missing.tfb")], "cannot read factory bundle"),
        (["--broker-node", "127.0.0.1:1883", "--broker-node", "broker-2"], "must look like host:port"),
        (["--broker-node", "broker-2:99999"], "the port must be a number from 1 to 65535"),
    ]
    for extra, message in cases:
        args = [FLEET_SIM, "run", "--devices", "2", "--token", "t", "--trust", str(pub), "--api", "http://127.0.0.1:9"]
        if "--factory" not in extra:
            args += ["--factory", str(junk)]
        out = subprocess.run([*args, *extra], capture_output=True, text=True, timeout=60)
        assert out.returncode == 2, (extra, out.stderr)
        assert message in out.stderr and "Traceback" not in out.stderr, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
