"""One server per data directory, and a free API port, checked before anything is touched.

A second `fleet-server serve` on the same data directory used to adopt the running broker, give it new
credentials, fail to bind the API port and stop the broker on its way out, breaking the first server for
good. `DataDirLock` holds an exclusive `flock` on `<data_dir>/server.lock` for the life of the process (the
kernel drops it when the process dies, however it dies), and `check_port` binds the API address once.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from pathlib import Path

from tinyfleet.server.files import FILE_MODE, private_dir


class InUseError(RuntimeError):
    """Something this server needs is held by another process; the message says what."""


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "server.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise InUseError(
                    f"data directory {self.path.parent} is in use by another fleet-server (pid {holder})"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
            self._fd = None


def check_port(host: str, port: int) -> None:
    """Raise InUseError when `host:port` cannot be bound now (uvicorn binds it later, with SO_REUSEADDR too)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise InUseError(f"API address {host}:{port} is in use ({exc.strerror}); set TINYFLEET_API_PORT") from None
