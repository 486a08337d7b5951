from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

FLEETCTL = Path(sys.executable).parent / "fleetctl"


@pytest.fixture
def fleetctl() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the installed `fleetctl` console script, as an operator would."""

    def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(FLEETCTL), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120)

    return run


def one_line_error(r: subprocess.CompletedProcess[str]) -> str:
    """Assert the failure was reported as a single line on stderr, no traceback, and return it."""
    assert r.returncode != 0
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: ")
    return lines[0]
