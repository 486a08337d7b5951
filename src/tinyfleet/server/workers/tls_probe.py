"""Which certificate a TLS server presents: how the server confirms that the broker serves the certificate a
CA rotation gave it (a real handshake, not a look at files)."""

from __future__ import annotations

import hashlib
import socket
import ssl


def presented_fingerprint(host: str, port: int, timeout: float = 5.0) -> str | None:
    """SHA-256 (hex) of the DER certificate the server at host:port presents first; None when no handshake
    completes. Nothing is verified here: the caller compares the fingerprint with the one it expects."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, ctx.wrap_socket(raw) as tls:
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return None
    return hashlib.sha256(der).hexdigest() if der else None
