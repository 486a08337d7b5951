"""How to start one node of the clustered broker (cluster/node.mjs) and its Redis (docs/scaling.md, "Deploying").

The node program runs under Node.js 20 with the packages `make venv` installs into the source tree's
node_modules/ (package.json pins them): it must be started from this source tree.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

NODE_SCRIPT = Path(__file__).with_name("cluster") / "node.mjs"
READY = "listening on"  # the node prints "tinyfleet-broker-node <id> listening on <host>:<port>" when ready


class NodeSetupError(RuntimeError):
    """Node.js or the broker's packages are missing; the message says what to install."""


def node_command(node_id: str, host: str, port: int, redis_host: str, redis_port: int, node_bin: str = "node", *,
                 tls: tuple[Path, Path] | None = None,
                 redis_password_file: Path | None = None) -> list[str]:  # fmt: skip
    """`tls`: the listener's (certificate chain, key) PEM files, else it listens in clear text (a node takes a
    new certificate on SIGHUP). `redis_password_file`: a file holding Redis' requirepass."""
    exe = shutil.which(node_bin)
    if exe is None:
        raise NodeSetupError(f"{node_bin!r} not found: the clustered broker needs Node.js 20 (Debian package nodejs)")
    modules = NODE_SCRIPT.parents[5] / "node_modules" / "aedes"
    if not modules.is_dir():
        raise NodeSetupError(f"{modules} is missing: run `make venv` (npm ci) in the source tree")
    cmd = [exe, str(NODE_SCRIPT), "--id", node_id, "--host", host, "--port", str(port),
           "--redis-host", redis_host, "--redis-port", str(redis_port)]  # fmt: skip
    if tls is not None:
        cmd += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
    if redis_password_file is not None:
        cmd += ["--redis-password-file", str(redis_password_file)]
    return cmd


def redis_command(host: str, port: int, directory: Path, redis_bin: str = "redis-server", *,
                  password: str | None = None) -> list[str]:  # fmt: skip
    """A Redis for the cluster: every write appended to its log and fsynced once a second. `password`: clients
    must give it (requirepass); it goes into `directory`/redis.conf (mode 0600), not on the command line."""
    exe = shutil.which(redis_bin)
    if exe is None:
        raise NodeSetupError(f"{redis_bin!r} not found: the clustered broker needs Redis (Debian package redis-server)")
    if password is not None and (not password or any(c.isspace() or c == '"' for c in password)):
        raise ValueError("a Redis password must be one word without quotes")
    conf = []
    if password is not None:
        path = directory / "redis.conf"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f'requirepass "{password}"\n')
        conf = [str(path)]
    return [exe, *conf, "--bind", host, "--port", str(port), "--dir", str(directory), "--save", "",
            "--appendonly", "yes", "--appendfsync", "everysec", "--protected-mode", "no"]  # fmt: skip
