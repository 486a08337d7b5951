"""Runs Mosquitto as a child process with the generated configuration and the identity plugin.

Each broker identity is one file (server/broker/identities.py) that the plugin reads on every CONNECT:
`set_identity` replaces or removes one file, atomically (temp file, then `os.replace`), and the change holds
from the next CONNECT on, with no reload. Dropping a live session is the plugin's job too, asked over MQTT
(workers/broker_control.py).

Mosquitto runs as `run_as` (an unprivileged user when the server is root, docs/operations.md): it reads its
configuration, loads the plugin, binds and loads its TLS key as root, then drops to that user, which owns the
broker's directory, so the plugin's reads of identity files and the broker's persistence work as that user.

The broker outlives a crashed server: its pid is kept in the work directory, and a server starting on the
same directory adopts a live Mosquitto running this configuration instead of starting a second one. A
chosen free port is remembered there too, so devices find the broker where their credentials say.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import tinyfleet.server.broker as broker_package
from tinyfleet.protocol import topics
from tinyfleet.server.broker import identities
from tinyfleet.server.broker.config import BrokerLimits, render_acl, render_conf
from tinyfleet.server.broker.passwords import hash_password
from tinyfleet.server.files import FILE_MODE, private_dir, unreachable_by, write_atomic

log = logging.getLogger("tinyfleet.server.broker")


class BrokerError(RuntimeError):
    """The broker could not be started, or did not take a credential change."""


def plugin_path() -> Path:
    """The identity plugin the package build installed next to this package (CMakeLists.txt)."""
    for location in broker_package.__path__:  # an editable install lists the source and the built files
        candidate = Path(location) / identities.PLUGIN_FILE
        if candidate.is_file():
            return candidate.resolve()
    raise BrokerError(f"the broker's identity plugin {identities.PLUGIN_FILE} is not built: run `make venv` "
                      "(it needs Debian's mosquitto-dev, libmosquitto-dev and libssl-dev)")  # fmt: skip


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class EmbeddedBroker:
    def __init__(
        self,
        workdir: Path,
        *,
        server_user: str,
        server_password: str,
        extra_server_users: Sequence[str] = (),
        bind: str = "127.0.0.1",
        port: int = 0,
        mosquitto_bin: str = "mosquitto",
        plugin: Path | None = None,
        tls: tuple[Path, Path] | None = None,
        run_as: str | None = None,
        limits: BrokerLimits = BrokerLimits(),
    ) -> None:
        """`run_as`: the user Mosquitto runs as; None = the server's own user."""
        self.workdir = workdir = workdir.resolve()
        self.limits = limits
        try:
            self.user = pwd.getpwnam(run_as) if run_as is not None else pwd.getpwuid(os.getuid())
        except KeyError:
            raise BrokerError(f"the broker's user {run_as!r} does not exist (Debian's mosquitto package creates "
                              "'mosquitto'; or set broker_user)") from None  # fmt: skip
        # files Mosquitto reads after dropping to its user belong to it; the server (root) reaches them anyway
        self._owner = (self.user.pw_uid, self.user.pw_gid) if self.user.pw_uid != os.getuid() else None
        self.bind = bind
        self.port_file = workdir / "port"
        if port == 0 and self.port_file.exists():
            port = int(self.port_file.read_text())
        self.port = port or free_port(bind)
        self.mosquitto_bin = mosquitto_bin
        self.plugin = plugin if plugin is not None else plugin_path()
        self.tls = (tls[0].resolve(), tls[1].resolve()) if tls else None
        self.server_user = server_user
        # replicas connecting to this broker each need a user of their own (client id = username)
        self.server_users = [server_user, *extra_server_users]
        for user in self.server_users:  # the plugin builds an identity's path from its name
            if not topics.valid_device_id(user):
                raise BrokerError(f"broker user {user!r} must be {topics.DEVICE_ID_RULE}")
        self._server_hash = hash_password(server_password)
        self._proc: subprocess.Popen[bytes] | None = None
        self._adopted_pid: int | None = None
        self.pid_file = workdir / "mosquitto.pid"
        self.conf_file = workdir / "mosquitto.conf"
        self.identities_dir = workdir / "identities"
        self.acl_file = workdir / "acl"
        self.log_file = workdir / "mosquitto.log"
        self.persistence_dir = workdir / "persistence"
        # the certificate chain and key the broker serves during a fleet CA rotation (one file: Mosquitto's
        # certfile and keyfile), owned by the broker's user, which rereads it on every SIGHUP
        self.certificate_file = workdir / "certificate.pem"

    @property
    def running(self) -> bool:
        if self._adopted_pid is not None:
            return _alive(self._adopted_pid)
        return self._proc is not None and self._proc.poll() is None

    def _pid(self) -> int | None:
        if self._adopted_pid is not None:
            return self._adopted_pid
        return self._proc.pid if self._proc is not None else None

    def _find_orphan(self) -> int | None:
        """A Mosquitto left running by a server that died, with exactly this configuration."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        return pid if str(self.conf_file).encode() in cmdline and _alive(pid) else None

    def identity_file(self, username: str) -> Path:
        return self.identities_dir / identities.relative_path(username, self.server_users)

    def set_identity(self, username: str, password_hash: str | None) -> None:
        """Replace one identity's file with `password_hash` (None: remove it): the broker's whole work for
        adding, rotating or revoking one device. Not fsynced: the database is the record, and start() rewrites
        every identity that does not match it."""
        path = self.identity_file(username)
        if password_hash is None:
            path.unlink(missing_ok=True)
        else:
            write_atomic(path, password_hash, owner=self._owner, durable=False)

    def kept_certificate(self) -> str | None:
        """What the broker served when it last ran from `certificate_file`, if anything."""
        try:
            return self.certificate_file.read_text()
        except (OSError, UnicodeDecodeError):
            return None

    def use_certificate(self, pem: str) -> None:
        """Serve `pem` (chain then key) from `certificate_file`, from the next start or `reload()` on."""
        private_dir(self.workdir, owner=self._owner)
        write_atomic(self.certificate_file, pem, owner=self._owner)
        self.tls = (self.certificate_file.resolve(), self.certificate_file.resolve())

    def reload(self) -> None:
        """SIGHUP: Mosquitto 2.0.11 rereads its configuration and its listeners' certificates; connected
        clients stay connected (docs/operations.md, "Rotating the broker's CA")."""
        pid = self._pid()
        if pid is None or not self.running:
            raise BrokerError("the broker is not running")
        os.kill(pid, signal.SIGHUP)

    def _write_identities(self, device_hashes: Mapping[str, str]) -> None:
        """Make the identities directory hold exactly the server users and these devices (id -> `$7$` hash):
        at start, after changes a server that stopped mid-way may have left undone. Files that already hold
        the right hash are not rewritten."""
        clash = sorted(set(device_hashes) & set(self.server_users))
        if clash:
            raise BrokerError(f"device id {clash[0]!r} collides with a server broker user")
        wanted = {str(self.identity_file(d)): h for d, h in device_hashes.items()}
        wanted |= {str(self.identity_file(u)): self._server_hash for u in self.server_users}
        for sub in (identities.SERVER_DIR, *identities.SHARD_DIRS):
            for entry in os.scandir(private_dir(self.identities_dir / sub, owner=self._owner)):
                if entry.path not in wanted:  # a device deleted while the server was away, or a temp file
                    os.unlink(entry.path)
                elif Path(entry.path).read_text() == wanted[entry.path]:
                    del wanted[entry.path]
        for path, h in wanted.items():
            write_atomic(Path(path), h, owner=self._owner)
        write_atomic(self.acl_file, render_acl(self.server_users), owner=self._owner)

    def _prepare_dirs(self) -> None:
        """The broker's directory and its persistence: 0700, owned by the broker's user, reachable by it."""
        private_dir(self.workdir, owner=self._owner)
        private_dir(self.persistence_dir, owner=self._owner)
        private_dir(self.identities_dir, owner=self._owner)
        if self._owner is not None:
            for f in self.persistence_dir.iterdir():  # written by a broker that ran as another user before
                os.chown(f, *self._owner)
            groups = {g.gr_gid for g in grp.getgrall() if self.user.pw_name in g.gr_mem} | {self.user.pw_gid}
            blocked = unreachable_by(self.user.pw_uid, groups, self.workdir)
            if blocked is not None:
                raise BrokerError(
                    f"the broker runs as user {self.user.pw_name!r}, which cannot enter {blocked} "
                    f"(mode {blocked.stat().st_mode & 0o777:o}) on the way to {self.workdir}: choose a data_dir "
                    "it can reach, or set broker_user"
                )

    def start(self, device_hashes: Mapping[str, str], timeout: float = 10.0) -> None:
        self._prepare_dirs()
        self._write_identities(device_hashes)
        orphan = self._find_orphan()
        if orphan is not None:
            self._adopted_pid = orphan
            os.kill(orphan, signal.SIGHUP)  # once per server start: the ACL file may name other server users
            return
        write_atomic(self.port_file, str(self.port))
        conf = render_conf(
            port=self.port,
            bind=self.bind,
            plugin=self.plugin,
            identities_dir=self.identities_dir.resolve(),
            server_users=self.server_users,
            acl_file=self.acl_file.resolve(),
            persistence_dir=self.persistence_dir.resolve(),
            run_as_user=self.user.pw_name,
            log_file=self.log_file.resolve(),
            pid_file=self.pid_file.resolve(),
            tls=self.tls,
            limits=self.limits,
        )
        write_atomic(self.conf_file, conf, owner=self._owner)
        stderr_fd = os.open(self.workdir / "mosquitto.stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            self._proc = subprocess.Popen(
                [self.mosquitto_bin, "-c", str(self.conf_file)],
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C meant for the server must not kill the broker first
                stdout=subprocess.DEVNULL,
                stderr=stderr_fd,
                umask=0o077,  # its log, pid and persistence files: 0600
            )
        finally:
            os.close(stderr_fd)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrokerError(f"mosquitto exited with code {self._proc.returncode}: {self._log_tail()}")
            try:
                with socket.create_connection((self.bind, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerError(f"mosquitto did not listen on {self.bind}:{self.port} within {timeout} s")

    def stop(self, timeout: float = 10.0) -> None:
        if self._adopted_pid is not None:
            pid, self._adopted_pid = self._adopted_pid, None
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            return
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def _log_tail(self) -> str:
        for f in (self.workdir / "mosquitto.stderr", self.log_file):
            if f.exists() and f.stat().st_size:
                return " | ".join(f.read_text(errors="replace").strip().splitlines()[-3:])
        return "(no log output)"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie (exited, not yet reaped) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
