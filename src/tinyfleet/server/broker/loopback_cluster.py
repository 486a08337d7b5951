"""A whole clustered broker on this machine's loopback: one Redis and K nodes, each its own process on a free
port, started as cluster_node.py says (for tests, benchmarks and trying the cluster out; docs/scaling.md says
how to deploy one across machines).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

from tinyfleet.server.broker.cluster_node import READY, node_command, redis_command

HOST = "127.0.0.1"
REDIS_READY = "Ready to accept connections"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_for_line(log: Path, text: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Wait until `proc` writes `text` into `log`; its log's tail in the error if it exits or times out first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"{proc.args[0]} did not say {text!r}: {log.read_text(errors='replace')[-2000:]}")


class LoopbackCluster:
    """Redis and `nodes` broker nodes, started on entry (NodeSetupError if Node.js, the broker's packages or
    Redis are missing) and killed on exit; every process logs into `work`. `tls`: the nodes' (certificate
    chain, key) PEM files; `redis_password`: Redis requires it and the nodes read it from a file."""

    def __init__(self, work: Path, nodes: int = 2, tls: tuple[Path, Path] | None = None,
                 redis_password: str | None = None) -> None:  # fmt: skip
        if nodes < 1:
            raise ValueError("a cluster needs at least one node")
        self.work, self.tls, self.redis_password = work, tls, redis_password
        self.redis_port = free_port()
        self.ports = [free_port() for _ in range(nodes)]
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def nodes(self) -> list[tuple[str, int]]:
        return [(HOST, p) for p in self.ports]

    @property
    def redis_url(self) -> str:
        auth = f":{self.redis_password}@" if self.redis_password is not None else ""
        return f"redis://{auth}{HOST}:{self.redis_port}/0"

    def server_settings(self) -> dict[str, str]:
        """The TINYFLEET_* settings of a fleet-server on this cluster (docs/scaling.md, "Deploying"); it also
        needs a PostgreSQL DATABASE_URL."""
        host, port = self.nodes[0]
        return {
            "TINYFLEET_BROKER_MODE": "cluster",
            "TINYFLEET_BROKER_HOST": host,
            "TINYFLEET_BROKER_PORT": str(port),
            "TINYFLEET_BROKER_NODES": json.dumps([f"{h}:{p}" for h, p in self.nodes]),
            "TINYFLEET_CLUSTER_STORE_URL": self.redis_url,
        }

    @property
    def pids(self) -> list[int]:
        """Redis' and every node's."""
        return [p.pid for p in self.procs]

    def __enter__(self) -> LoopbackCluster:
        self.work.mkdir(parents=True, exist_ok=True)
        secret = None
        if self.redis_password is not None:
            secret = self.work / "redis.secret"
            secret.write_text(self.redis_password + "\n")
        redis_cmd = redis_command(HOST, self.redis_port, self.work, password=self.redis_password)
        node_cmds = [node_command(f"n{i}", HOST, port, HOST, self.redis_port, tls=self.tls, redis_password_file=secret)
                     for i, port in enumerate(self.ports, start=1)]  # fmt: skip
        try:
            self._run(redis_cmd, "redis.log", REDIS_READY)
            for i, cmd in enumerate(node_cmds, start=1):
                self._run(cmd, f"node{i}.log", READY)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        for p in reversed(self.procs):
            p.kill()
            p.wait(10)
        self.procs = []

    def _run(self, cmd: list[str], log_name: str, ready: str) -> None:
        log = self.work / log_name
        with log.open("wb") as out:
            self.procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT))
        wait_for_line(log, ready, self.procs[-1])
