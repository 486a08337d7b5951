"""`fleet-server serve` logs plain lines to a terminal and JSON lines elsewhere, or as `log_format` says."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from tinyfleet.server.workers.broker_process import free_port


def _serve(tmp: Path, stderr: int, **env: str) -> subprocess.Popen[bytes]:
    full = {k: v for k, v in os.environ.items() if k != "TINYFLEET_LOG_FORMAT"}
    full.update({"TINYFLEET_DATA_DIR": str(tmp / "data"), "TINYFLEET_API_PORT": str(free_port()), **env})
    return subprocess.Popen([sys.executable, "-c", "from tinyfleet.server.main import main; main()", "serve"],
                            env=full, stderr=stderr, stdout=subprocess.DEVNULL)  # fmt: skip


def _first_log_line(read_fd: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> str:
    """The line that says the database revision (the first log line after startup warnings)."""
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([read_fd], [], [], 0.5)
        if ready:
            try:
                buf += os.read(read_fd, 4096)
            except OSError:
                break
            for line in buf.decode(errors="replace").splitlines():
                if "schema revision" in line:
                    return line.strip()
    raise AssertionError(f"no log line: {buf.decode(errors='replace')}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)


def test_a_terminal_gets_plain_lines(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    proc = _serve(tmp_path, slave)
    os.close(slave)
    try:
        line = _first_log_line(master, proc)
        assert not line.startswith("{") and " info    tinyfleet.server: database at schema revision " in line, line
    finally:
        _stop(proc)
        os.close(master)


def test_a_pipe_gets_json_and_the_setting_decides(tmp_path: Path) -> None:
    for env, is_json in (({}, True), ({"TINYFLEET_LOG_FORMAT": "text"}, False)):
        r, w = os.pipe()
        proc = _serve(tmp_path / str(len(env)), w, **env)
        os.close(w)
        try:
            line = _first_log_line(r, proc)
            if is_json:
                assert json.loads(line)["msg"].startswith("database at schema revision")
            else:
                assert not line.startswith("{") and "database at schema revision" in line
        finally:
            _stop(proc)
            os.close(r)
