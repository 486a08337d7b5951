"""A short scripted fleet run for `make demo` (until fleet-sim lands): fleet-server with its own Mosquitto,
two bundles built with `fleetctl bundle build`, six devices scripted with plain paho clients (the same ones
the end-to-end tests use), and a staged, stratified rollout driven with `fleetctl` to completion.

    .venv/bin/python -m tests.server.demo_fleet --key demo-out/keys/signing.key.pem --out demo-out/fleet
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tinyfleet.bundles import TrustedKeys
from tinyfleet.server.workers.broker_process import free_port

from .srv_device import ScriptedDevice

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "models/sample"
TOKEN = "demo-admin-token"
SITES = ("plant-a", "plant-b", "plant-c")


def run(*args: str, env: dict[str, str], check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess[str]:
    print("$", " ".join(args[:3] + (("...",) if len(args) > 6 else args[3:])), flush=True)
    r = subprocess.run(list(args), env={**os.environ, **env}, capture_output=True, text=True, timeout=300)
    if r.stdout.strip() and not quiet:
        print(r.stdout.rstrip())
    if check and r.returncode != 0:
        sys.exit(f"demo: {args[0]} {args[1]} failed: {r.stderr.strip()}")
    return r


def build(out: Path, key: Path, bundle_id: str, counter: int, firmware: Path) -> Path:
    dest = out / f"{bundle_id}.tfb"
    run("fleetctl", "bundle", "build", "--out", str(dest), "--key", str(key), "--id", bundle_id, "--hw", "stm32l4",
        "--counter", str(counter), "--firmware", str(firmware), "--firmware-version", "2.3.1",
        "--model", str(SAMPLE / "vibration_int8.tflite"), "--model-version", f"1.{counter}.0",
        "--thresholds", str(SAMPLE / "thresholds.json"), "--calibration", str(SAMPLE / "calibration.json"),
        "--val", str(SAMPLE / "val.npz"), "--fe-version", "vib-window-v1", "--max-latency-ms", "50",
        "--peak-ram", "65536", env={})  # fmt: skip
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--key", type=Path, required=True, help="PEM private signing key (fleetctl keys init)")
    ap.add_argument("--out", type=Path, default=Path("demo-out/fleet"))
    args = ap.parse_args()
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    pub = args.key.with_name(args.key.name.replace(".key.pem", ".pub.pem"))
    fw = out / "firmware.bin"
    fw.write_bytes(b"tinyfleet demo firmware\n" + bytes(range(256)) * 100)
    v1 = build(out, args.key, "vib-1.1", 11, fw)
    v2 = build(out, args.key, "vib-1.2", 12, fw)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server_env = {
        "TINYFLEET_DATA_DIR": str(out / "data"),
        "TINYFLEET_API_PORT": str(port),
        "TINYFLEET_BOOTSTRAP_ADMIN_TOKEN": TOKEN,
        "TINYFLEET_TRUSTED_KEY_FILES": json.dumps([str(pub)]),
    }
    op = {"TINYFLEET_SERVER": url, "TINYFLEET_TOKEN": TOKEN}
    print(f"$ fleet-server serve   (API {url}, log {out / 'server.log'})", flush=True)
    with open(out / "server.log", "ab") as log:
        server = subprocess.Popen(["fleet-server", "serve"], env={**os.environ, **server_env},
                                  stdout=subprocess.DEVNULL, stderr=log)  # fmt: skip
    devices: list[ScriptedDevice] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=2).json()["status"] == "ok":
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit(f"demo: fleet-server did not come up; see {out / 'server.log'}")
            time.sleep(0.2)
        for b in (v1, v2):
            run("fleetctl", "rollout", "upload", str(b), env=op)
        keys = TrustedKeys.from_pem_files([pub])
        for i in range(6):
            dev_id = f"sensor-{i:02d}"
            r = run("fleetctl", "devices", "provision", dev_id, "--hw", "stm32l4", "--tag", f"site={SITES[i % 3]}",
                    env=op, quiet=True)  # fmt: skip
            creds = json.loads(r.stdout)["broker"]
            print(f"  {dev_id}: broker user {creds['username']}, password shown once (not printed here)")
            for _ in range(50):  # the broker reloads its password file a moment after provisioning
                dev = ScriptedDevice(creds["port"], dev_id, creds["password"], "stm32l4", keys, v1.read_bytes())
                deadline = time.monotonic() + 1
                while not dev.client.is_connected() and time.monotonic() < deadline:
                    time.sleep(0.02)
                if dev.client.is_connected():
                    break
                dev.close()
            devices.append(dev)
        print(f"== 6 scripted devices online, running vib-1.1 (broker port {creds['port']})", flush=True)
        run("fleetctl", "rollout", "create", "--bundle", "vib-1.2", "--stages", "10,50,100", "--stratify-by", "site",
            env=op)  # fmt: skip
        r = run("fleetctl", "rollout", "wait", "1", "--timeout", "120", env=op, check=False)
        run("fleetctl", "rollout", "status", "1", "--devices", env=op)
        run("fleetctl", "devices", "list", env=op)
        if r.returncode != 0:
            sys.exit("demo: the rollout did not complete")
    finally:
        for d in devices:
            d.close()
        server.send_signal(signal.SIGTERM)
        server.wait(30)


if __name__ == "__main__":
    main()
