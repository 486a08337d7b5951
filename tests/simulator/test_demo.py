"""`fleet-sim demo` tells the whole story end to end (at 30 devices here; `make demo` runs 200)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_demo_runs_the_story_and_checks_its_end_state(tmp_path: Path) -> None:
    exe = str(Path(sys.executable).with_name("fleet-sim"))
    env = {k: v for k, v in os.environ.items() if k != "DEMO_KEEP"}  # it would wait for Ctrl-C
    out = subprocess.run([exe, "demo", "--devices", "30", "--seed", "2", "--workdir", str(tmp_path / "demo")],
                         capture_output=True, text=True, timeout=300, env=env)  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    text = " ".join(out.stdout.split())
    assert "demo complete" in text and "invariant violations │ 0" in text.replace("  ", " ")
    assert text.count("completed at stage 3/3") == 2 and text.count("halted at stage 1/3") == 2
    assert "calibration-only rollouts completed" in text and "bricked devices │ 0" in text
    assert text.count("dashboard: http://127.0.0.1:") == 2 and "/ui/ (token fleet-sim-admin-token)" in text
