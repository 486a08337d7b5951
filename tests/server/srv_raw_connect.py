"""One MQTT 3.1.1 CONNECT with arbitrary username bytes, to see what the broker answers to usernames no MQTT
library would send (NUL, bad UTF-8, 65,535 bytes)."""

from __future__ import annotations

import socket

ACCEPTED = 0
NOT_AUTHORIZED = 5


def _field(b: bytes) -> bytes:
    return len(b).to_bytes(2, "big") + b


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def connack_code(port: int, username: bytes, password: bytes, timeout_s: float = 5.0) -> int | None:
    """The CONNACK return code (0 accepted, 5 not authorized), or None when the broker closed the connection
    without one (a malformed packet)."""
    # protocol "MQTT" level 4, flags: username, password, clean session; a client id of its own
    body = _field(b"MQTT") + bytes([4, 0xC2]) + (5).to_bytes(2, "big")
    body += _field(b"raw-probe") + _field(username) + _field(password)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(bytes([0x10]) + _remaining_length(len(body)) + body)
        reply = b""
        try:
            while len(reply) < 4:
                chunk = sock.recv(4 - len(reply))
                if not chunk:
                    return None
                reply += chunk
        except ConnectionResetError:
            return None
        assert reply[0] == 0x20 and reply[1] == 2, reply
        if reply[3] == ACCEPTED:
            sock.sendall(b"\xe0\x00")
        return reply[3]
