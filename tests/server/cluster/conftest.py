"""A clustered broker on this machine's loopback: one Redis and two broker nodes, on free ports."""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def start_cluster(tmp_path: Path, nodes: int = 2, tls: tuple[Path, Path] | None = None,
                  redis_password: str | None = None) -> Iterator[Cluster]:  # fmt: skip
    """Redis and `nodes` broker nodes on free loopback ports; `tls`: the nodes' (certificate, key);
    `redis_password`: Redis requires it, and the nodes read it from a file."""
    rport = free_port()
    secret = None
    if redis_password is not None:
        secret = tmp_path / "redis.secret"
        secret.write_text(redis_password + "\n")
    try:
        redis_cmd = redis_command("127.0.0.1", rport, tmp_path, password=redis_password)
        cmds = [node_command(f"n{i}", "127.0.0.1", free_port(), "127.0.0.1", rport, tls=tls,
                             redis_password_file=secret) for i in range(1, nodes + 1)]  # fmt: skip
    except NodeSetupError as exc:
        pytest.skip(str(exc))
    auth = f":{redis_password}@" if redis_password is not None else ""
    url = f"redis://{auth}127.0.0.1:{rport}/0"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        log = tmp_path / "redis.log"
        procs.append(subprocess.Popen(redis_cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT))
        wait_for_line(log, "Ready to accept connections", procs[-1])
        addrs = []
        for i, cmd in enumerate(cmds, start=1):
            log = tmp_path / f"node{i}.log"
            procs.append(subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT))
            wait_for_line(log, READY, procs[-1])
            addrs.append(("127.0.0.1", int(cmd[cmd.index("--port") + 1])))
        sink = ClusterCredentialSink(url, [SERVER_USER], ShardLocks())
        sink.register_server_user(SERVER_USER, hash_password(SERVER_PW))
        yield Cluster(url, addrs, sink, procs)
        sink.close()
    finally:
        for p in reversed(procs):
            p.kill()
            p.wait(10)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with start_cluster(tmp_path) as c:
        yield c
