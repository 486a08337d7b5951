"""Request bodies are bounded before they are read, and an unauthenticated caller's body is never read: checked
over a real socket against a real uvicorn server, by what the server answers before the body is sent."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from tinyfleet.server.api.app import create_app
from tinyfleet.server.runtime import FleetRuntime
from tinyfleet.server.settings import Settings
from tinyfleet.server.workers.broker_process import free_port

TOKEN = "limits-admin"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[int]:
    rt = FleetRuntime(
        Settings(data_dir=tmp_path / "data", bootstrap_admin_token=TOKEN, run_model_gate=False,
                 max_request_bytes=64 * 1024, max_bundle_request_bytes=256 * 1024)  # fmt: skip
    )
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(rt), host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started
    yield port
    srv.should_exit = True
    t.join(15)


def _head_only(port: int, method: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """Send the request line and headers, no body at all; return the status and body the server answers with."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        lines = [f"{method} {path} HTTP/1.1", "Host: x", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
        s.sendall("\r\n".join(lines).encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        length = next((int(v) for k, _, v in (h.partition(b":") for h in head.split(b"\r\n")[1:])
                       if k.strip().lower() == b"content-length"), 0)  # fmt: skip
        while len(rest) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        return int(head.split()[1]), rest


def _chunked(port: int, path: str, total: int, headers: dict[str, str]) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        lines = [f"POST {path} HTTP/1.1", "Host: x", "Transfer-Encoding: chunked",
                 *(f"{k}: {v}" for k, v in headers.items()), "", ""]  # fmt: skip
        s.sendall("\r\n".join(lines).encode())
        sent, piece = 0, b"x" * 8192
        try:
            while sent < total:
                s.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                sent += len(piece)
            s.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed mid-body
        data = s.recv(65536)
        return int(data.split()[1])


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_a_huge_declared_body_is_refused_before_a_byte_is_read(server: int) -> None:
    status, body = _head_only(server, "POST", "/api/v1/devices", {"Content-Length": "400000000"})
    assert status == 413 and b"above the 65536-byte limit (max_request_bytes)" in body
    status, _ = _head_only(server, "POST", "/api/v1/devices", {"Content-Length": "400000000", **AUTH})
    assert status == 413
    status, _ = _head_only(server, "POST", "/api/v1/devices", {"Content-Length": "-5", **AUTH})
    assert status == 400  # h11 refuses a malformed length itself


def test_without_a_valid_token_the_body_is_not_read(server: int) -> None:
    # under the limit: the answer comes although the 60,000 declared bytes were never sent
    status, body = _head_only(server, "POST", "/api/v1/devices", {"Content-Length": "60000"})
    assert status == 401 and b"missing bearer token" in body
    status, body = _head_only(server, "POST", "/api/v1/rollouts", {"Content-Length": "60000",
                                                                   "Authorization": "Bearer forged"})  # fmt: skip
    assert status == 401 and b"unknown or revoked token" in body


def test_a_body_of_undeclared_length_is_read_only_up_to_the_limit(server: int) -> None:
    assert _chunked(server, "/api/v1/devices", 10 * 1024 * 1024, AUTH) == 413
    assert _chunked(server, "/api/v1/devices", 10 * 1024 * 1024, {}) == 401


def test_bundle_routes_have_their_own_larger_limit(server: int) -> None:
    status, _ = _head_only(server, "POST", "/api/v1/bundles", {"Content-Length": str(300 * 1024), **AUTH})
    assert status == 413
    # 100 KiB is over the general limit but within the bundle one: it is read, then refused as no bundle
    with socket.create_connection(("127.0.0.1", server), timeout=10) as s:
        body = b"\0" * (100 * 1024)
        head = f"POST /api/v1/bundles HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        head += f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n\r\n"
        s.sendall(head.encode() + body)
        assert int(s.recv(65536).split()[1]) == 422
