"""A clustered broker on this machine's loopback (loopback_cluster.py), with the tests' server user in it."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tinyfleet.server.broker.cluster_identities import ClusterCredentialSink
from tinyfleet.server.broker.cluster_node import NodeSetupError
from tinyfleet.server.broker.loopback_cluster import LoopbackCluster
from tinyfleet.server.broker.passwords import hash_password
from tinyfleet.server.services.credential_sync import ShardLocks

SERVER_USER, SERVER_PW = "fleet-server", "server-secret"


@dataclass
class Cluster:
    loopback: LoopbackCluster
    sink: ClusterCredentialSink

    @property
    def redis_url(self) -> str:
        return self.loopback.redis_url

    @property
    def nodes(self) -> list[tuple[str, int]]:
        return self.loopback.nodes

    @property
    def procs(self) -> list[subprocess.Popen[bytes]]:
        return self.loopback.procs


@contextlib.contextmanager
def start_cluster(tmp_path: Path, nodes: int = 2, tls: tuple[Path, Path] | None = None,
                  redis_password: str | None = None) -> Iterator[Cluster]:  # fmt: skip
    """Redis and `nodes` broker nodes on free loopback ports, the test's server user registered; `tls`: the
    nodes' (certificate, key); `redis_password`: Redis requires it, and the nodes read it from a file."""
    with contextlib.ExitStack() as stack:
        try:
            running = stack.enter_context(LoopbackCluster(tmp_path, nodes, tls=tls, redis_password=redis_password))
        except NodeSetupError as exc:
            pytest.skip(str(exc))
        sink = ClusterCredentialSink(running.redis_url, [SERVER_USER], ShardLocks())
        stack.callback(sink.close)
        sink.register_server_user(SERVER_USER, hash_password(SERVER_PW))
        yield Cluster(running, sink)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with start_cluster(tmp_path) as c:
        yield c
