"""A bundle cannot be signed around a failing model: `fleetctl bundle build` runs the gate first.

End to end through the installed CLI: the sample model gives a signed bundle whose health-vector
component is the gate's golden vectors and whose manifest carries the measured arena and the report's
digest; each failing fixture is refused and no bundle file appears.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyfleet.bundles import ComponentType, HealthVectors, parse_bundle

FLEETCTL = Path(sys.executable).parent / "fleetctl"
MODELS = Path(__file__).resolve().parents[3] / "models"
SAMPLE = MODELS / "sample"


def _fleetctl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(FLEETCTL), *map(str, args)], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def key(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("keys")
    r = _fleetctl("keys", "init", "--dir", d)
    assert r.returncode == 0, r.stderr
    return d / "signing.key.pem"


@pytest.fixture(scope="module")
def val(tmp_path_factory) -> Path:
    """Every 5th sample of the committed set (200 samples, every class and stratum), for speed."""
    p = tmp_path_factory.mktemp("val") / "val.npz"
    with np.load(SAMPLE / "val.npz") as v:
        np.savez(p, **{k: (v[k][::5] if v[k].ndim and k != "classes" else v[k]) for k in v.files})
    return p


def _build(
    tmp: Path, key: Path, val: Path, model: Path, hw: str
) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    (tmp / "fw.bin").write_bytes(b"\x00firmware image\xff" * 64)
    out, report = tmp / "b.tfb", tmp / "report.json"
    r = _fleetctl(
        "bundle", "build", "--out", out, "--key", key, "--id", f"vibration-test-{hw}", "--hw", hw, "--counter", "3",
        "--firmware", tmp / "fw.bin", "--firmware-version", "1.0.0", "--model", model, "--model-version", "1.0.0",
        "--thresholds", SAMPLE / "thresholds.json", "--calibration", SAMPLE / "calibration.json",
        "--val", val, "--float", SAMPLE / "vibration_float.tflite", "--fe-version", "vib-window-v1",
        "--max-latency-ms", "1000", "--peak-ram", str(256 * 1024), "--report", report,
    )  # fmt: skip
    return r, out, report


def test_sample_model_is_signed_with_its_golden_vectors(tmp_path: Path, key: Path, val: Path) -> None:
    r, out, report = _build(tmp_path, key, val, SAMPLE / "vibration_int8.tflite", "stm32l4")
    assert r.returncode == 0, r.stderr
    b = parse_bundle(out.read_bytes())
    doc = json.loads(report.read_text())
    assert b.manifest.model.arena_bytes == doc["arena_bytes"] > 0
    assert b.manifest.provenance.validation_report_digest == hashlib.sha256(report.read_bytes()).digest()
    hv = HealthVectors.decode(b.payload(ComponentType.HEALTH_VECTORS))
    assert len(hv.vectors) == doc["golden_vectors"]["count"] == 8
    assert hashlib.sha256(hv.encode()).hexdigest() == doc["golden_vectors"]["sha256"]
    assert b.payload(ComponentType.MODEL) == (SAMPLE / "vibration_int8.tflite").read_bytes()


@pytest.mark.parametrize(
    ("model", "hw", "failing"),
    [
        ("fixtures/saturating", "stm32l4", "saturation"),
        ("fixtures/arena_large", "stm32l4", "memory"),
        ("fixtures/unsupported_op", "esp32s3", "tflm_runs"),
        ("fixtures/float_io", "esp32s3", "full_integer"),
    ],
)
def test_failing_models_are_refused_and_nothing_is_signed(
    tmp_path: Path, key: Path, val: Path, model, hw, failing
) -> None:
    r, out, _ = _build(tmp_path, key, val, MODELS / f"{model}.tflite", hw)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert f"FAIL {failing}:" in r.stderr
    assert "bundle not signed" in r.stderr
    assert not out.exists()
