"""A clustered broker on this machine's loopback: one Redis and two broker nodes, on free ports."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tinyfleet.server.broker.cluster_identities import ClusterCredentialSink
from tinyfleet.server.broker.cluster_node import READY, NodeSetupError, node_command, redis_command
from tinyfleet.server.broker.passwords import hash_password
from tinyfleet.server.services.credential_sync import ShardLocks

SERVER_USER, SERVER_PW = "fleet-server", "server-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_line(log: Path, text: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"{proc.args[0]} did not say {text!r}: {log.read_text(errors='replace')[-2000:]}")


@dataclass
class Cluster:
    redis_url: str
    nodes: list[tuple[str, int]]
    sink: ClusterCredentialSink
    procs: list[subprocess.Popen[bytes]]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    rport = free_port()
    try:
        redis_cmd = redis_command("127.0.0.1", rport, tmp_path)
        cmds = [node_command(f"n{i}", "127.0.0.1", free_port(), "127.0.0.1", rport) for i in (1, 2)]
    except NodeSetupError as exc:
        pytest.skip(str(exc))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        log = tmp_path / "redis.log"
        procs.append(subprocess.Popen(redis_cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT))
        wait_for_line(log, "Ready to accept connections", procs[-1])
        nodes = []
        for i, cmd in enumerate(cmds, start=1):
            log = tmp_path / f"node{i}.log"
            procs.append(subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT))
            wait_for_line(log, READY, procs[-1])
            nodes.append(("127.0.0.1", int(cmd[cmd.index("--port") + 1])))
        sink = ClusterCredentialSink(f"redis://127.0.0.1:{rport}/0", [SERVER_USER], ShardLocks())
        sink.register_server_user(SERVER_USER, hash_password(SERVER_PW))
        yield Cluster(f"redis://127.0.0.1:{rport}/0", nodes, sink, procs)
        sink.close()
    finally:
        for p in reversed(procs):
            p.kill()
            p.wait(10)
