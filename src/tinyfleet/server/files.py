"""How the server writes files: private modes, atomic replacement, and who may reach its directories.

Every file the server writes holds something an attacker on the host could use (password hashes, the
database, signed bundles, the broker's configuration), so files are 0600 and directories 0700, and a file is
replaced whole (a temporary file in the same directory, fsync, `os.replace`): a reader, Mosquitto among
them, sees the old file or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def write_atomic(path: Path, data: bytes | str, *, mode: int = FILE_MODE, owner: tuple[int, int] | None = None,
                 durable: bool = True) -> None:  # fmt: skip
    """Replace `path` with `data`, created with `mode` (and `owner` uid, gid) before any byte is visible.
    `durable=False` skips the fsync, for files rebuilt from the database at every start (a crash may leave
    such a file empty, never half of an old and half of a new one to a running reader)."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # unique: concurrent writers never share it
    try:
        os.fchmod(fd, mode)
        if owner is not None:
            os.fchown(fd, *owner)
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def private_dir(path: Path, *, mode: int = DIR_MODE, owner: tuple[int, int] | None = None) -> Path:
    """Create `path` (and missing parents) and give it `mode` and `owner`, also when it already existed."""
    path.mkdir(parents=True, exist_ok=True)
    if owner is not None:
        os.chown(path, *owner)
    os.chmod(path, mode)
    return path


def private_file(path: Path, *, mode: int = FILE_MODE) -> None:
    """Create `path` empty with `mode` if it does not exist; tighten it to `mode` if it does."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, mode)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def tighten(path: Path, *, mode: int = FILE_MODE) -> None:
    """Give an existing file `mode` (files an older server wrote world-readable); absent files are skipped."""
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, mode)


def unreachable_by(uid: int, gids: set[int], path: Path) -> Path | None:
    """The first directory from `/` down to `path` that user `uid` (in groups `gids`) cannot traverse, or None.

    Mosquitto running as its own user re-reads the password file by path on every reload, so every directory
    above it must let that user through."""
    if uid == 0:
        return None
    current = Path("/")
    for part in path.resolve().parts[1:]:
        st = current.stat()
        bit = stat.S_IXUSR if st.st_uid == uid else stat.S_IXGRP if st.st_gid in gids else stat.S_IXOTH
        if not st.st_mode & bit:
            return current
        current = current / part
    return None
