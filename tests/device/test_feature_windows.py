"""The feature extractor's committed test windows (device/tests/features/vib-window-v1.xz) are what
scripts/gen_feature_windows.py makes now: the validation set's calibrated windows, whose reference outputs are
val.npz's inputs, and the edge windows with tinyfleet.bundles.features' output for each."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_committed_windows_are_not_stale() -> None:
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_feature_windows.py"), "--check"],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr + r.stdout
