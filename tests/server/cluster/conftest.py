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
    redis_url: str
    nodes: list[tuple[str, int]]
    sink: ClusterCredentialSink
    procs: list[subprocess.Popen[bytes]]
    loopback: LoopbackCluster


@contextlib.contextmanager
def start_cluster(tmp_path: Path, nodes: int = 2, tls: tuple[Path, Path] | None = None,
                  redis_password: str | None = None) -> Iterator[Cluster]:  # fmt: skip
    """Redis and `nodes` broker nodes on free loopback ports, the test's server user registered; `tls`: the
    nodes' (certificate, key); `redis_password`: Redis requires it, and the nodes read it from a file."""
    try:
        running = LoopbackCluster(tmp_path, nodes, tls=tls, redis_password=redis_password).__enter__()
    except NodeSetupError as exc:
        pytest.skip(str(exc))
    try:
        sink = ClusterCredentialSink(running.redis_url, [SERVER_USER], ShardLocks())
        sink.register_server_user(SERVER_USER, hash_password(SERVER_PW))
        yield Cluster(running.redis_url, running.nodes, sink, running.procs, running)
        sink.close()
    finally:
        running.__exit__()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with start_cluster(tmp_path) as c:
        yield c
