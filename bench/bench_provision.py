"""Provisioning through the API: devices per second per decile at 1k, 10k and 100k devices.

Each size gets a fresh server (SQLite, embedded Mosquitto) in a process of its own, serving the real API over
HTTP with uvicorn. Two ways in: one POST /api/v1/devices per device (W client threads, keep-alive HTTP
connections), and POST /api/v1/devices/batch with B devices a request (BW client threads; B at most N/10, so
every decile holds at least one response). Each decile's rate is N/10 over the time between the decile's
first and last completed provisioning (a device of a batch completes when its batch's response is back). In
each decile some devices (every N/(10*S)-th) CONNECT to the broker with the password the API just returned,
once, right after the response: `connected_first_try` counts those the broker accepted.

Baseline, same run: the single-device driver against the password-file design (the whole file rewritten and
Mosquitto reloaded with SIGHUP per group of changes), served from the source tree of commit BASELINE_REF (git
archive), at 1k and 5k devices.

Goal (issue 13): 100,000 devices in <= 600 s, the last decile's rate >= 0.7x the first's (judged on the batch
endpoint, the way a factory provisions).

.venv/bin/python bench/bench_provision.py [--sizes 1000,10000,100000] [--skip-100k] [--single-sizes 1000,10000]
                                          [--baseline-sizes 1000,5000] [--workers 16] [--batch 500]
                                          [--batch-workers 2]
Results: bench/results/provision.json
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BASELINE_REF = "fafdd2a"  # main before the identity plugin: password file + SIGHUP reload
TOKEN = "bench-provision-admin"


def serve(data_dir: Path, port: int, src: Path | None) -> None:
    """The server under test, in this process (run as `--serve`)."""
    if src is not None:  # the baseline's source tree, not the editable install of this one
        sys.meta_path[:] = [f for f in sys.meta_path if "ScikitBuild" not in type(f).__name__]
        sys.path.insert(0, str(src))
    import uvicorn

    from tinyfleet.server.api.app import create_app
    from tinyfleet.server.runtime import FleetRuntime
    from tinyfleet.server.settings import Settings

    served_from = Path(sys.modules[FleetRuntime.__module__].__file__ or "")
    assert src is None or served_from.is_relative_to(src), served_from
    settings = Settings(data_dir=data_dir, bootstrap_admin_token=TOKEN, run_model_gate=False,
                        broker_user=pwd.getpwuid(os.getuid()).pw_name)  # fmt: skip
    uvicorn.run(create_app(FleetRuntime(settings)), host="127.0.0.1", port=port, log_level="warning",
                access_log=False)  # fmt: skip


class Server:
    def __init__(self, src: Path | None) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="tf-bench-prov-"))
        sys.path.insert(0, str(ROOT))
        from tinyfleet.server.workers.broker_process import free_port

        self.port = free_port()
        cmd = [sys.executable, __file__, "--serve", str(self.work / "data"), "--port", str(self.port)]
        if src is not None:
            cmd += ["--src", str(src)]
        with open(self.work / "server.log", "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
        import httpx

        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", headers={"Authorization": f"Bearer {TOKEN}"})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.http.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError((self.work / "server.log").read_text()[-2000:])
            time.sleep(0.2)
        self.broker_port = int((self.work / "data" / "broker" / "port").read_text())

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        pid_file = self.work / "data" / "broker" / "mosquitto.pid"
        if pid_file.exists():  # a broker the server did not stop (killed above)
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
        self.http.close()
        shutil.rmtree(self.work, ignore_errors=True)


def provision_many(server: Server, n: int, workers: int, samples_per_decile: int, batch: int = 0) -> dict[str, Any]:
    """`batch` 0: one POST /api/v1/devices per device; otherwise POST /api/v1/devices/batch with `batch` devices
    each (a device counts as done when its batch's response is back)."""
    import httpx

    from tests.server.srv_raw_connect import ACCEPTED, connack_code

    every = max(1, n // (10 * samples_per_decile))
    done_at: list[float] = []
    lock = threading.Lock()
    sampled = [[0, 0] for _ in range(10)]  # per decile: tried, accepted
    failures: list[str] = []
    local = threading.local()
    counter = iter(range(0, n, max(1, batch)))

    def post(http: httpx.Client, first: int) -> list[tuple[int, str]] | None:
        """(index, password) of each device provisioned, or None (a failure, recorded)."""
        if not batch:
            r = http.post("/api/v1/devices", json={"id": f"p{first:06d}", "hardware_class": "stm32l4"})
            if r.status_code == 201:
                return [(first, r.json()["broker"]["password"])]
        else:
            idx = range(first, min(n, first + batch))
            body = {"devices": [{"id": f"p{i:06d}", "hardware_class": "stm32l4"} for i in idx]}
            r = http.post("/api/v1/devices/batch", json=body)
            if r.status_code == 201:
                return [(i, d["broker"]["password"]) for i, d in zip(idx, r.json()["devices"], strict=True)]
        with lock:
            failures.append(f"p{first:06d}: {r.status_code} {r.text[:200]}")
        return None

    def worker() -> None:
        http = local.__dict__.setdefault("http", httpx.Client(base_url=str(server.http.base_url),
                                                              headers=server.http.headers, timeout=120))  # fmt: skip
        while True:
            with lock:
                first = next(counter, None)
            if first is None:
                http.close()
                return
            done = post(http, first)
            if done is None:
                continue
            # right after the API returned: one CONNECT, no retry
            codes = {i: connack_code(server.broker_port, f"p{i:06d}".encode(), pw.encode())
                     for i, pw in done if i % every == 0}  # fmt: skip
            with lock:
                now = time.perf_counter()
                for i, _ in done:
                    done_at.append(now)
                    if i in codes:
                        decile = min(9, (len(done_at) - 1) * 10 // n)
                        sampled[decile][0] += 1
                        sampled[decile][1] += codes[i] == ACCEPTED

    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        for f in [pool.submit(worker) for _ in range(workers)]:
            f.result()
    total = time.perf_counter() - t0
    done_at.sort()
    deciles = []
    step = len(done_at) // 10
    for k in range(10):
        start = t0 if k == 0 else done_at[k * step - 1]
        end = done_at[(k + 1) * step - 1] if k < 9 else done_at[-1]
        count = step if k < 9 else len(done_at) - 9 * step
        deciles.append({"devices": count, "seconds": round(end - start, 3),
                        "devices_per_s": round(count / (end - start), 1),
                        "sampled": sampled[k][0], "connected_first_try": sampled[k][1]})  # fmt: skip
    return {
        "devices": n,
        "per_request": max(1, batch),
        "provisioned": len(done_at),
        "failures": failures[:5],
        "failure_count": len(failures),
        "seconds": round(total, 2),
        "devices_per_s": round(len(done_at) / total, 1),
        "deciles": deciles,
        "last_over_first_decile": round(deciles[-1]["devices_per_s"] / deciles[0]["devices_per_s"], 3),
        "sampled_connected_first_try": f"{sum(s[1] for s in sampled)}/{sum(s[0] for s in sampled)}",
    }


def run(sizes: list[int], baseline_sizes: list[int], single_sizes: list[int], workers: int, batch: int,
        batch_workers: int, samples: int) -> dict[str, Any]:  # fmt: skip
    sys.path.insert(0, str(ROOT))
    from bench.common import write_result

    result: dict[str, Any] = {"workers": workers, "batch": batch, "batch_workers": batch_workers,
                              "baseline_ref": BASELINE_REF, "baseline": [], "identity_plugin": [],
                              "identity_plugin_batch": []}  # fmt: skip
    old_src = None
    if baseline_sizes:
        old_src = Path(tempfile.mkdtemp(prefix="tf-bench-baseline-"))
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", BASELINE_REF, "src"], check=True,
                                 capture_output=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(old_src)], input=archive, check=True)
    plan = [("baseline", old_src, baseline_sizes, 0, workers), ("identity_plugin", None, single_sizes, 0, workers),
            ("identity_plugin_batch", None, sizes, batch, batch_workers)]  # fmt: skip
    try:
        for label, src, todo, per_request, w in plan:
            for n in todo:
                server = Server(src / "src" if src else None)
                load_before = os.getloadavg()
                try:  # at least one batch per decile, so that no decile is part of one response
                    r = provision_many(server, n, w, samples, min(per_request, n // 10))
                finally:
                    server.stop()
                r["load_average_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
                result[label].append(r)
                print(f"{label:21s} {n:>7d} devices: {r['seconds']:8.1f} s, {r['devices_per_s']:7.1f}/s, "
                      f"last/first decile {r['last_over_first_decile']:.2f}, sampled connected on first try "
                      f"{r['sampled_connected_first_try']}, failures {r['failure_count']}, "
                      f"load {r['load_average_before_after']}", flush=True)  # fmt: skip
    finally:
        if old_src is not None:
            shutil.rmtree(old_src, ignore_errors=True)
    big = [r for r in result["identity_plugin_batch"] if r["devices"] == 100_000]
    if big:
        result["goal_100k_within_600_s"] = big[0]["seconds"] <= 600
        result["goal_last_decile_ge_0.7x_first"] = big[0]["last_over_first_decile"] >= 0.7
    print("wrote", write_result("provision", result))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--skip-100k", action="store_true", help="a quick run: leave out sizes of 100,000 and more")
    ap.add_argument("--baseline-sizes", default="1000,5000", help="'' for none")
    ap.add_argument("--single-sizes", default="1000,10000", help="sizes provisioned one request per device")
    ap.add_argument("--workers", type=int, default=16, help="client threads, one request per device")
    ap.add_argument("--batch", type=int, default=500, help="devices per batch request (at most N/10)")
    ap.add_argument("--batch-workers", type=int, default=2, help="client threads sending batches")
    ap.add_argument("--samples-per-decile", type=int, default=10)
    ap.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--src", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve is not None:
        serve(a.serve, a.port, a.src)
        return
    sizes = [int(s) for s in a.sizes.split(",") if s]
    if a.skip_100k:
        sizes = [s for s in sizes if s < 100_000]
    single = [int(s) for s in a.single_sizes.split(",") if s]
    run(sizes, [int(s) for s in a.baseline_sizes.split(",") if s], single, a.workers, a.batch, a.batch_workers,
        a.samples_per_decile)


if __name__ == "__main__":
    main()
