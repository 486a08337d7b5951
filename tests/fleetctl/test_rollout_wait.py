"""`fleetctl rollout wait` against a real server: it outlives a server restart, its timeout has its own exit code,
and on a terminal it shows a bar per stage with the gate it waits on."""

from __future__ import annotations

import os
import subprocess
import threading

from .conftest import FLEETCTL, LiveServer


def _rollout_that_waits(srv: LiveServer) -> int:
    """A rollout whose only device never connects: it waits for an install forever."""
    srv.upload("app-1.0")
    assert srv.api("POST", "/devices", json={"id": "silent", "hardware_class": "stm32l4"}).status_code == 201
    r = srv.api("POST", "/rollouts", json={"bundle_id": "app-1.0", "stages": [{"percent": 100}]})
    assert r.status_code == 201, r.text
    return r.json()["rollout"]["id"]


def test_wait_outlives_a_server_restart_and_times_out_with_its_own_code(live_server: LiveServer, fleetctl_env) -> None:
    rid = _rollout_that_waits(live_server)
    r = fleetctl_env(live_server.env, "rollout", "wait", str(rid), "--timeout", "1")
    assert r.returncode == 3, r.stdout + r.stderr
    assert r.stderr.strip() == f"error: rollout {rid} still running after 1 s"

    proc = subprocess.Popen(
        [str(FLEETCTL), "rollout", "wait", str(rid), "--timeout", "300"],
        text=True, env={**os.environ, **live_server.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    first = threading.Event()

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line)
            first.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert first.wait(60), proc.stderr.read() if proc.poll() is not None else "no output"  # type: ignore[union-attr]
        live_server.proc.stop()  # the wait keeps waiting through the restart
        live_server.proc.start()
        assert live_server.api("POST", f"/rollouts/{rid}/abort").status_code == 200
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(10)
    out = "".join(lines)
    assert proc.returncode == 1, out + proc.stderr.read()  # type: ignore[union-attr]
    assert f"server {live_server.url} unreachable; waiting for it to come back" in out
    assert "server reachable again" in out
    assert out.splitlines()[-1].startswith(f"rollout {rid} app-1.0: aborted")


def test_wait_on_a_terminal_shows_a_bar_per_stage_and_the_gate(live_server: LiveServer, fleetctl_env) -> None:
    rid = _rollout_that_waits(live_server)
    # FORCE_COLOR makes rich treat the pipe as a terminal, as an operator's shell is
    r = fleetctl_env({**live_server.env, "FORCE_COLOR": "1", "COLUMNS": "160"}, "rollout", "wait", str(rid),
                     "--timeout", "2")  # fmt: skip
    assert r.returncode == 3
    assert "stage 1/1 (100%)" in r.stdout and "0/1" in r.stdout
    assert "stage 1: waiting for 1 device(s) to install" in r.stdout
