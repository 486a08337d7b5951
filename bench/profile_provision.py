"""Where a provisioning's CPU time goes in the server: py-spy samples the running `fleet-server` process (the
bench's own server, bench_provision.py) while client threads provision N devices, and each sample is put in
the phase of the request it belongs to. Prints milliseconds of server CPU per provisioned device, by phase.

py-spy counts a thread as busy when it runs or waits for the GIL, so on a loaded machine each phase also
carries its share of waiting for the interpreter; the phases' shares are what to compare.

.venv/bin/python bench/profile_provision.py [--devices 2000] [--batch 0] [--workers 16] [--ref COMMIT]
  --batch B: POST /api/v1/devices/batch with B devices a request (0: one POST /api/v1/devices per device)
  --ref: profile the server of that commit's source tree (git archive), e.g. the one before a change
Needs py-spy (in the dev extra). Results: bench/results/provision_profile.json (the last run of each
ref and batch size).
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RATE_HZ = 200

# First match wins, searched over the whole stack of a sample; a key's "|"-separated parts must all be in one
# frame ("function (path:line)").
PHASES = (
    ("token lookup in the body-limit middleware", "BodyLimit._authenticate"),
    ("token lookup in the auth dependency", "current_principal"),
    ("audit entry: insert and commit", "record (|services/audit.py"),
    ("hardware profiles: read", "load_profiles"),
    ("password: generate and hash", "hash_password"),
    ("identity file: write", "set_identity"),
    ("broker confirmation: publish and wait", "BrokerControl.apply"),
    ("device: read back after commit", "Session.refresh"),
    ("device: SELECT whether it exists", "Session.get"),
    ("device: insert and commit", "Session.commit"),
    ("batch: checks", "check_batch"),
)


def phase_of(frames: list[str]) -> str:
    for name, key in PHASES:
        if any(all(part in f for part in key.split("|")) for f in frames):
            return name
    if "MainThread" in frames[0]:
        return "event loop: HTTP, middleware, routing, request parsing"
    if any("paho" in f or "mqtt_link" in f for f in frames):
        return "MQTT client thread (paho)"
    if any("WorkerThread" in f for f in frames):
        if any("Queue.get" in f or "call_soon_threadsafe" in f for f in frames):
            return "thread pool: hand-offs between the event loop and request threads"
        return "request thread: dependencies, sessions, response model"
    return "other threads"


def breakdown(raw: Path, devices: int) -> dict[str, float]:
    """py-spy's raw (collapsed) output -> ms of samples per device, by phase."""
    samples: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples[phase_of(stack.split(";"))] += int(count)
    return {k: round(1000 * v / RATE_HZ / devices, 2) for k, v in samples.most_common()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--ref", help="serve this commit's source tree")
    a = ap.parse_args()
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        sys.exit("py-spy is not installed: .venv/bin/pip install -e '.[dev]'")
    sys.path.insert(0, str(ROOT))
    from bench.bench_provision import Server, provision_many
    from bench.common import RESULTS, write_result

    work = Path(tempfile.mkdtemp(prefix="tf-profile-"))
    src = None
    if a.ref:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", a.ref, "src"], check=True,
                                 capture_output=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(work)], input=archive, check=True)
        src = work / "src"
        from tinyfleet.server.workers.broker_process import plugin_path

        # the identity plugin as this tree built it (built by the package install, not in git)
        shutil.copy(plugin_path(), src / "tinyfleet" / "server" / "broker" / plugin_path().name)
    try:
        server = Server(src)
        try:
            raw = work / "samples.txt"
            rec = subprocess.Popen([spy, "record", "-p", str(server.proc.pid), "-f", "raw", "-o", str(raw), "--threads",
                                    "-r", str(RATE_HZ), "--nonblocking"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)  # fmt: skip
            time.sleep(2)  # py-spy attached
            load = Path("/proc/loadavg").read_text().split()[0]
            run = provision_many(server, a.devices, a.workers, 10, a.batch)
            rec.send_signal(2)
            rec.wait(60)
        finally:
            server.stop()
        phases = breakdown(raw, a.devices)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {"ref": a.ref or "this tree", "devices": a.devices, "per_request": max(1, a.batch),
              "workers": a.workers, "devices_per_s": run["devices_per_s"], "failure_count": run["failure_count"],
              "load_average_1min_at_start": float(load), "server_cpu_ms_per_device": round(sum(phases.values()), 2),
              "by_phase_ms_per_device": phases}  # fmt: skip
    print(f"{result['ref']}: {a.devices} devices, {max(1, a.batch)} per request, {run['devices_per_s']}/s, "
          f"load {load}: {result['server_cpu_ms_per_device']} ms of server CPU per device")
    for k, v in phases.items():
        print(f"  {v:7.2f} ms  {k}")
    out = RESULTS / "provision_profile.json"
    runs = json.loads(out.read_text()).get("runs", {}) if out.exists() else {}
    runs[f"{result['ref']}, {result['per_request']} per request"] = result | {"measured_at": time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip
    print("wrote", write_result("provision_profile", {"runs": runs}))


if __name__ == "__main__":
    main()
