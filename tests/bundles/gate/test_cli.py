"""`fleetctl model validate` as an operator runs it: verdicts, figures, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

FLEETCTL = Path(sys.executable).parent / "fleetctl"
MODELS = Path(__file__).resolve().parents[3] / "models"


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FLEETCTL), "model", "validate", *map(str, args)], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def small_val(tmp_path_factory) -> Path:
    """Every 11th sample of the committed set (91 samples, every class and stratum), for speed."""
    p = tmp_path_factory.mktemp("val") / "val.npz"
    with np.load(MODELS / "sample" / "val.npz") as v:
        np.savez(p, **{k: (v[k][::11] if v[k].ndim and k != "classes" else v[k]) for k in v.files})
    return p


def _one_line_error(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 2
    assert "Traceback" not in r.stderr + r.stdout
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


def test_sample_passes_with_a_table(small_val: Path) -> None:
    r = _run(
        MODELS / "sample" / "vibration_int8.tflite",
        "--hw",
        "stm32l4",
        "--val",
        small_val,
        "--float",
        MODELS / "sample" / "vibration_float.tflite",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr == ""  # TFLM's and LiteRT's native logs are captured, not leaked
    for name in ("full_integer", "tflm_runs", "memory", "latency", "accuracy", "float_drop", "saturation", "agreement"):
        assert name in r.stdout
    assert "FAIL" not in r.stdout and "model gate PASSED" in r.stdout
    assert "estimated" in r.stdout and "arena 5,120 / 65,536 B" in r.stdout
    assert "temperature=hot" in r.stdout


def test_json_output_is_the_report(small_val: Path) -> None:
    r = _run(MODELS / "sample" / "vibration_int8.tflite", "--hw", "esp32s3", "--val", small_val, "--json")
    assert r.returncode == 0
    doc = json.loads(r.stdout)
    assert doc["passed"] is True and doc["profile"]["name"] == "esp32s3"
    assert doc["validation_set"]["samples"] == 91
    assert (
        r.stdout
        == _run(MODELS / "sample" / "vibration_int8.tflite", "--hw", "esp32s3", "--val", small_val, "--json").stdout
    )


@pytest.mark.parametrize(
    ("model", "hw", "failing"),
    [
        ("fixtures/arena_large", "stm32l4", "memory"),
        ("fixtures/unsupported_op", "esp32s3", "tflm_runs"),
        ("fixtures/float_io", "esp32s3", "full_integer"),
    ],
)
def test_fixtures_exit_nonzero_naming_the_failed_check(model: str, hw: str, failing: str, small_val: Path) -> None:
    r = _run(MODELS / f"{model}.tflite", "--hw", hw, "--val", small_val, "--json", "--max-latency-ms", "1000")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert [c["name"] for c in doc["checks"] if c["status"] == "fail"] == [failing]


def test_saturating_fixture_table_shows_the_layer(small_val: Path) -> None:
    r = _run(MODELS / "fixtures" / "saturating.tflite", "--hw", "stm32l4", "--val", small_val)
    assert r.returncode == 1
    assert "saturating layers: 3:CONV_2D" in r.stdout and "model gate FAILED" in r.stdout


def test_bad_inputs_get_one_line_errors(tmp_path: Path, small_val: Path) -> None:
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"this is not a model")
    assert "no 'TFL3' flatbuffer identifier" in _one_line_error(_run(junk, "--hw", "esp32s3"))
    cut = tmp_path / "cut.tflite"
    cut.write_bytes((MODELS / "sample" / "vibration_int8.tflite").read_bytes()[:4000])
    assert "truncated or corrupt TFLite model" in _one_line_error(_run(cut, "--hw", "esp32s3"))
    model = MODELS / "sample" / "vibration_int8.tflite"
    assert "unknown hardware profile 'esp8266'" in _one_line_error(_run(model, "--hw", "esp8266"))
    assert "cannot read model" in _one_line_error(_run(tmp_path / "missing.tflite", "--hw", "esp32s3"))
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, inputs=np.zeros((3, 256, 3), np.float32), labels=np.zeros(3, np.int64))
    assert "inputs are float32, the model expects int8" in _one_line_error(
        _run(model, "--hw", "esp32s3", "--val", wrong)
    )


def test_user_profiles_from_a_file_or_the_environment(tmp_path: Path) -> None:
    prof = tmp_path / "boards.toml"
    prof.write_text(
        '[tiny]\ndescription = "4 KiB for the model"\nsram_bytes = 16384\nflash_bytes = 131072\n'
        "model_sram_bytes = 4096\nmodel_flash_bytes = 32768\nbank_bytes = 65536\nbank_count = 2\n"
        "clock_mhz = 48\ncycles_per_mac = 4.0\nop_overhead_cycles = 1000\n"
    )
    model = MODELS / "sample" / "vibration_int8.tflite"
    r = _run(model, "--hw", "tiny", "--profiles", prof, "--json")
    assert r.returncode == 1
    memory = next(c for c in json.loads(r.stdout)["checks"] if c["name"] == "memory")
    assert memory["status"] == "fail" and "4,096 B of model SRAM" in memory["detail"]
    env = subprocess.run(
        [str(FLEETCTL), "model", "validate", str(model), "--hw", "tiny", "--json"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "TINYFLEET_PROFILES": str(prof)},
    )  # fmt: skip
    assert env.returncode == 1 and env.stdout == r.stdout
    prof.write_text("[tiny]\nsram_bytes = -1\n")
    assert "profile 'tiny' in" in _one_line_error(_run(model, "--hw", "tiny", "--profiles", prof))
