"""One MQTT 3.1.1 CONNECT with a username and password, to learn whether the broker accepts them.

The server uses it to confirm that Mosquitto has loaded the credential files it just wrote: Mosquitto reloads
on SIGHUP, asynchronously, and a SIGHUP that arrives while a reload is running is lost (the reload clears the
flag when it ends), so "sent" is not "loaded".
"""

from __future__ import annotations

import socket
import ssl

ACCEPTED = 0
NOT_AUTHORIZED = 5


def _utf8(s: str) -> bytes:
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def connect_packet(username: str, password: str, keepalive_s: int = 5) -> bytes:
    # protocol "MQTT" level 4, flags: username, password, clean session; client id = username (the broker
    # configuration makes it so anyway)
    body = _utf8("MQTT") + bytes([4, 0xC2]) + keepalive_s.to_bytes(2, "big")
    body += _utf8(username) + _utf8(username) + _utf8(password)
    return bytes([0x10]) + _remaining_length(len(body)) + body


def connack_code(host: str, port: int, username: str, password: str, *, tls: bool = False,
                 timeout_s: float = 2.0) -> int | None:  # fmt: skip
    """The CONNACK return code (0 accepted, 5 not authorized), or None if no CONNACK came."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as raw:
            sock: socket.socket = raw
            if tls:  # our own child broker on this host: its certificate is not what is being checked
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                sock = ctx.wrap_socket(raw)
            sock.sendall(connect_packet(username, password))
            reply = b""
            while len(reply) < 4:
                chunk = sock.recv(4 - len(reply))
                if not chunk:
                    return None
                reply += chunk
            if reply[0] != 0x20 or reply[1] != 2:
                return None
            if reply[3] == ACCEPTED:
                sock.sendall(b"\xe0\x00")  # DISCONNECT: no will, no session left behind
            return reply[3]
    except (OSError, ssl.SSLError):
        return None
