"""Every command in README.md and docs/operations.md runs as written.

Each file's `sh` blocks run in order, in one bash (`set -euo pipefail`, so the first non-zero exit fails the
test), in a scratch directory holding only links to the repository's `.venv/` and `models/`. A block is left
out only when the line just before it says `<!-- not run by tests/test_doc_commands.py: REASON -->`. The API
port is a free one (TINYFLEET_API_PORT and TINYFLEET_SERVER, which fleetctl and fleet-sim read), so the test
does not collide with a server on :8080; anything a block leaves running in the background is stopped at the
end.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(\w*)\s*$")
SKIP = re.compile(r"<!-- not run by tests/test_doc_commands\.py: (.+) -->")


def shell_blocks(path: Path) -> tuple[list[str], list[str]]:
    """(blocks to run, reasons of the blocks left out)."""
    run, skipped = [], []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        j = i + 1
        while not FENCE.match(lines[j]):
            j += 1
        if m.group(1) in ("sh", "bash", "shell"):
            before = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
            why = SKIP.search(before)
            if why:
                skipped.append(why.group(1))
            else:
                run.append("\n".join(lines[i + 1 : j]))
        i = j + 1
    return run, skipped


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def scratch() -> Iterator[Path]:
    """Where an operator would work: run as root, the server runs Mosquitto as `mosquitto`, which must pass
    through every directory above the data directory, and pytest's own are private to root."""
    d = Path(tempfile.mkdtemp(prefix="tf-docs-", dir="/var/tmp"))
    d.chmod(0o711)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("doc", ["README.md", "docs/operations.md"])
def test_every_shell_block_runs_as_written(doc: str, scratch: Path) -> None:
    tmp_path = scratch  # (the blocks' working directory)
    blocks, skipped = shell_blocks(ROOT / doc)
    assert blocks
    assert all(reason.strip() for reason in skipped)
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "models").symlink_to(ROOT / "models")
    port = _free_port()
    script = "\n".join(
        ["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT"]
        + [f"echo '=== block {n + 1} of {doc}' >&2\n{b}" for n, b in enumerate(blocks)]
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYFLEET_") and k != "DATABASE_URL"}
    env.update({"TINYFLEET_API_PORT": str(port), "TINYFLEET_SERVER": f"http://127.0.0.1:{port}",
                "PATH": f"{ROOT / '.venv/bin'}:{env.get('PATH', '/usr/bin:/bin')}"})  # fmt: skip
    r = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"exit {r.returncode}\n--- stdout\n{r.stdout[-4000:]}\n--- stderr\n{r.stderr[-6000:]}"
