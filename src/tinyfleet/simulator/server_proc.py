"""A `fleet-server serve` process of fleet-sim's own (chaos runs, the demo, tests and the benchmark).

The server runs exactly as an operator runs it: its own process, its embedded Mosquitto, its database, settings
through TINYFLEET_* variables. Stopping it (SIGTERM) stops its broker; starting it again on the same data
directory finds the same broker port and the same database, which is what `server-restart` exercises.
`restart_broker` stops only Mosquitto and starts it again from the configuration the server generated, the way
a service manager would.
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ADMIN_TOKEN = "fleet-sim-admin-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    def __init__(self, data_dir: Path, trusted_key: Path, *, db_url: str | None = None,
                 engine_interval_s: float = 0.2) -> None:  # fmt: skip
        self.data_dir = data_dir.resolve()
        self.api_port = free_port()
        self.env = {
            **os.environ,
            "TINYFLEET_DATA_DIR": str(self.data_dir),
            "TINYFLEET_API_PORT": str(self.api_port),
            "TINYFLEET_BOOTSTRAP_ADMIN_TOKEN": ADMIN_TOKEN,
            "TINYFLEET_TRUSTED_KEY_FILES": f'["{trusted_key.resolve()}"]',
            "TINYFLEET_ENGINE_INTERVAL_S": str(engine_interval_s),
            "TINYFLEET_RUN_MODEL_GATE": "true",
            # the simulated fleet's broker runs as whoever runs fleet-sim: its data directory is usually a
            # private temporary one, which a separate broker user could not enter (docs/simulator.md)
            "TINYFLEET_BROKER_USER": os.environ.get("TINYFLEET_BROKER_USER", getpass.getuser()),
        }
        self.env.pop("TINYFLEET_CONFIG", None)
        if db_url:
            self.env["DATABASE_URL"] = db_url
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self, timeout_s: float = 60.0, attempts: int = 3) -> None:
        """Start and wait until /healthz says ok. A broker port still held by the previous run's sockets
        (`Address already in use`) is retried, as a service manager's restart would."""
        for attempt in range(attempts):
            try:
                self._start_once(timeout_s)
                return
            except RuntimeError as e:
                if "Address already in use" not in self.broker_log_tail() or attempt == attempts - 1:
                    raise RuntimeError(f"{e} | broker: {self.broker_log_tail()}") from None
                time.sleep(1.0)

    def broker_log_tail(self) -> str:
        f = self.data_dir / "broker" / "mosquitto.log"
        return " | ".join(f.read_text(errors="replace").strip().splitlines()[-2:]) if f.exists() else ""

    def _start_once(self, timeout_s: float) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.data_dir / f"server-{self.starts}.log", "wb")  # noqa: SIM115  (owned by the child)
        exe = Path(sys.executable).with_name("fleet-server")
        self.proc = subprocess.Popen([str(exe), "serve", "--log-level", "warning"], env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        self.starts += 1
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"fleet-server exited with code {self.proc.returncode}: {self.log_tail()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"fleet-server did not become healthy within {timeout_s} s: {self.log_tail()}")

    @property
    def pid(self) -> int | None:
        """The running fleet-server's process id (None when it is not running)."""
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def restart(self, down_s: float = 1.0) -> None:
        """Stop the server (and so its broker), leave it down `down_s` seconds, start it on the same data."""
        self.stop()
        time.sleep(down_s)
        self.start()

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self._stop_orphan_broker()

    def _stop_orphan_broker(self) -> None:
        pid = self.broker_pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            _wait_gone(pid)

    def broker_pid(self) -> int | None:
        pid_file = self.data_dir / "broker" / "mosquitto.pid"
        try:
            pid = int(pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if b"mosquitto" in cmdline and str(self.data_dir).encode() in cmdline else None

    def restart_broker(self, down_s: float = 2.0, crash: bool = False) -> None:
        """Stop the broker (SIGTERM: it saves its persistence file; crash=True: SIGKILL, it saves nothing since
        its last autosave), leave it down `down_s` seconds, start it again from the server's configuration."""
        pid = self.broker_pid()
        if pid is None:
            raise RuntimeError("the server's broker is not running")
        os.kill(pid, signal.SIGKILL if crash else signal.SIGTERM)
        _wait_gone(pid)
        time.sleep(down_s)
        conf = self.data_dir / "broker" / "mosquitto.conf"
        subprocess.Popen(["mosquitto", "-c", str(conf)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        port = int((self.data_dir / "broker" / "port").read_text())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not come back after the restart")

    def log_tail(self, lines: int = 5) -> str:
        logs = sorted(self.data_dir.glob("server-*.log"))
        if not logs:
            return "(no log)"
        return " | ".join(logs[-1].read_text(errors="replace").strip().splitlines()[-lines:])


def pid_running(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"  # after "(comm)"
    except (ProcessLookupError, FileNotFoundError):
        return False
    except PermissionError:  # exists, owned by someone else
        return True


def _wait_gone(pid: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and pid_running(pid):
        time.sleep(0.05)
