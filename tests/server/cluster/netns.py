"""Network namespaces on this machine as separate hosts: one bridge in a hub namespace, one veth per host.

Each host namespace has its loopback and one veth (`eth0`, a link-local 169.254.213.x/24 address) whose
other end sits on the hub's bridge; no address is added anywhere else. `run` starts a process inside a host
(`ip netns exec` execs the command, so the Popen's pid is the program's own); `enter` runs a function on a
thread that joined a host's namespace, so the sockets it opens are that host's. `close` kills every process
started here and deletes every namespace (which deletes their veths), also after a failure.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import os
import re
import signal
import subprocess
from pathlib import Path

CLONE_NEWNET = 0x40000000
SUBNET = "169.254.213"
STALE = re.compile(r"tfc(\d+)-\w+")  # Topology(f"tfc{pid}-") names


class NetnsUnavailable(RuntimeError):
    """Namespaces cannot be made here; the message says why."""


def _ip(*args: str) -> None:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise NetnsUnavailable(f"`ip {' '.join(args)}` failed: {r.stderr.strip()}")


class Topology:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.hub = f"{prefix}hub"
        self.hosts: dict[str, str] = {}  # host name -> its address
        self.procs: list[subprocess.Popen[bytes]] = []
        self._made: list[str] = []

    def ns(self, host: str) -> str:
        return f"{self.prefix}{host}"

    def create(self, hosts: list[str]) -> None:
        if os.geteuid() != 0:
            raise NetnsUnavailable("network namespaces need root (ip netns add)")
        remove_stale()
        try:
            self._add_ns(self.hub)
            _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.hub, "link", "set", "br0", "up")
            for i, host in enumerate(hosts, start=1):
                ns = self.ns(host)
                self._add_ns(ns)
                _ip("-n", self.hub, "link", "add", f"h{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
                _ip("-n", self.hub, "link", "set", f"h{i}", "master", "br0", "up")
                addr = f"{SUBNET}.{i}"
                _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
                _ip("-n", ns, "link", "set", "eth0", "up")
                self.hosts[host] = addr
        except (NetnsUnavailable, OSError) as exc:
            self.close()
            raise NetnsUnavailable(str(exc)) from exc

    def _add_ns(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self._made.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")

    def run(self, host: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        out = open(log, "ab")  # noqa: SIM115  (the child owns it)
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns(host), *argv], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)  # fmt: skip
        out.close()
        self.procs.append(proc)
        return proc

    def enter(self, host: str) -> concurrent.futures.ThreadPoolExecutor:
        """A one-thread executor whose thread lives in `host`'s network namespace."""
        path = f"/run/netns/{self.ns(host)}"

        def join() -> None:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(path, os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns({path})")
            finally:
                os.close(fd)

        return concurrent.futures.ThreadPoolExecutor(1, initializer=join)

    @staticmethod
    def kill(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def close(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                self.kill(proc)
        for ns in reversed(self._made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        self._made.clear()


def remove_stale() -> None:
    """Namespaces of an earlier run whose pytest process was killed before it could delete them."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30).stdout
    for line in listed.splitlines():
        name = line.split()[0] if line.split() else ""
        m = STALE.fullmatch(name)
        if m and not Path(f"/proc/{m.group(1)}").exists():
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)

