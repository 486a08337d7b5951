"""The STM32L476 application test's frames and reference model input (device/targets/cortex-m/app/app_window.h)
are what scripts/gen_app_window.py makes now from tinyfleet.bundles.features and valid-stm32l4.tfb's
calibration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_committed_app_window_is_not_stale() -> None:
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_app_window.py"), "--check"],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr + r.stdout
