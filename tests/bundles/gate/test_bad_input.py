"""Bad input to the gate is a one-line GateInputError naming the problem, never a traceback or a crash."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinyfleet.bundles.gate import (
    FloatReference,
    GateConfig,
    GateInputError,
    ValidationSet,
    load_float_reference,
    load_validation_set,
    validate_model,
)
from tinyfleet.bundles.manifest import Deployment
from tinyfleet.bundles.profiles import load_profile

SAMPLE = Path(__file__).resolve().parents[3] / "models" / "sample"
MODEL = (SAMPLE / "vibration_int8.tflite").read_bytes()
DEPLOY = Deployment(min_battery_pct=20, max_latency_ms=50, peak_ram_bytes=32 * 1024)


def _fails(match: str, fn, *args, **kwargs) -> str:
    with pytest.raises(GateInputError) as e:
        fn(*args, **kwargs)
    text = str(e.value)
    assert match in text, text
    assert "\n" not in text
    return text


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "no 'TFL3' flatbuffer identifier in its 0 bytes"),
        (b"not a model at all, just some text", "no 'TFL3' flatbuffer identifier"),
        (MODEL[:100], "truncated or corrupt TFLite model: its 100 bytes"),
        (MODEL[: len(MODEL) // 2], "truncated or corrupt"),
        (MODEL[:-8], "truncated or corrupt"),
    ],
)
def test_not_a_flatbuffer_or_truncated(data: bytes, match: str) -> None:
    _fails(match, validate_model, data, load_profile("esp32s3"), DEPLOY)


def _val(inputs: np.ndarray, labels: np.ndarray) -> ValidationSet:
    return ValidationSet(inputs, labels.astype(np.int64))


def test_validation_set_shape_mismatch() -> None:
    v = _val(np.zeros((4, 128, 3), np.int8), np.zeros(4))
    _fails(
        "inputs have shape (128, 3) per sample, the model expects (1, 256, 3)",
        validate_model,
        MODEL,
        load_profile("esp32s3"),
        DEPLOY,
        val=v,
    )


def test_validation_set_dtype_mismatch() -> None:
    v = _val(np.zeros((4, 256, 3), np.float32), np.zeros(4))
    _fails("inputs are float32, the model expects int8", validate_model, MODEL, load_profile("esp32s3"), DEPLOY, val=v)


def test_label_out_of_range() -> None:
    v = _val(np.zeros((4, 256, 3), np.int8), np.array([0, 1, 2, 9]))
    _fails(
        "label 9 is out of range for a model with 4 outputs",
        validate_model,
        MODEL,
        load_profile("esp32s3"),
        DEPLOY,
        val=v,
    )


def test_float_reference_rows_must_match() -> None:
    v = _val(np.zeros((4, 256, 3), np.int8), np.zeros(4))
    ref = FloatReference(outputs=np.zeros((3, 4), np.float32))
    _fails(
        "float reference has 3 rows, the validation set 4 samples",
        validate_model,
        MODEL,
        load_profile("esp32s3"),
        DEPLOY,
        val=v,
        float_ref=ref,
    )


def test_float_reference_must_be_a_float_model() -> None:
    v = _val(np.zeros((4, 256, 3), np.int8), np.zeros(4))
    _fails(
        "float reference model takes int8 input",
        validate_model,
        MODEL,
        load_profile("esp32s3"),
        DEPLOY,
        val=v,
        float_ref=FloatReference(model=MODEL),
    )


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"inputs": np.zeros((2, 256, 3), np.int8)}, "missing array 'labels'"),
        ({"inputs": np.zeros((2, 256, 3), np.int8), "labels": np.zeros(3, np.int64)}, "2 inputs but 3 labels"),
        ({"inputs": np.zeros((2, 256, 3), np.int8), "labels": np.zeros(2, np.float32)}, "1-D integer array"),
        ({"inputs": np.zeros((0, 256, 3), np.int8), "labels": np.zeros(0, np.int64)}, "holds no samples"),
        (
            {"inputs": np.zeros((2, 256, 3), np.int8), "labels": np.array([0, 5]), "classes": np.array(["a", "b"])},
            "label 5 has no entry in 'classes'",
        ),
        (
            {"inputs": np.zeros((2, 256, 3), np.int8), "labels": np.zeros(2, np.int64), "tag_site": np.array(["a"])},
            "'tag_site' must hold one string per sample",
        ),
    ],
)
def test_malformed_validation_files(tmp_path: Path, arrays, match: str) -> None:
    p = tmp_path / "v.npz"
    np.savez(p, **arrays)
    _fails(match, load_validation_set, p)


def test_unreadable_validation_files(tmp_path: Path) -> None:
    _fails("no such file", load_validation_set, tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 garbage")
    _fails("not a readable .npz file", load_validation_set, tmp_path / "junk.npz")
    np.save(tmp_path / "one.npy", np.zeros(3))
    _fails("expected an .npz archive", load_validation_set, tmp_path / "one.npy")
    obj = tmp_path / "obj.npz"
    np.savez(obj, inputs=np.array([{"a": 1}], dtype=object), labels=np.zeros(1, np.int64))
    _fails("not a readable .npz file", load_validation_set, obj)


def test_float_reference_files(tmp_path: Path) -> None:
    _fails("expected a .tflite model or .npy/.npz outputs", load_float_reference, tmp_path / "ref.csv")
    _fails("cannot read it", load_float_reference, tmp_path / "missing.tflite")
    np.savez(tmp_path / "r.npz", other=np.zeros(2))
    _fails("missing array 'outputs'", load_float_reference, tmp_path / "r.npz")
    (tmp_path / "bad.tflite").write_bytes(b"nope")
    ref = load_float_reference(tmp_path / "bad.tflite")
    v = _val(np.zeros((2, 256, 3), np.int8), np.zeros(2))
    _fails(
        "no 'TFL3' flatbuffer identifier", validate_model, MODEL, load_profile("esp32s3"), DEPLOY, val=v, float_ref=ref
    )


def test_bad_config() -> None:
    _fails("golden_vectors must be within 1..64", GateConfig, golden_vectors=65)
    _fails("min_accuracy must be within 0..1", GateConfig, min_accuracy=1.5)


def test_corrupted_models_get_a_verdict_or_a_one_line_error() -> None:
    """Seeded byte corruptions of the sample model: each gives a report or a GateInputError, never a crash."""
    val = load_validation_set(SAMPLE / "val.npz").every(97)
    rng = np.random.default_rng(20261125)
    outcomes = set()
    for _ in range(120):
        data = bytearray(MODEL)
        for _ in range(int(rng.integers(1, 4))):
            data[int(rng.integers(0, 2000))] = int(rng.integers(0, 256))  # the header, tables and small tensors
        try:
            report = validate_model(bytes(data), load_profile("esp32s3"), DEPLOY, val=val)
        except GateInputError as e:
            assert "\n" not in str(e)
            outcomes.add("input error")
        else:
            outcomes.add("pass" if report.passed else "fail")
    assert {"input error", "pass"} <= outcomes


def test_a_model_that_crashes_tflm_is_a_tflm_runs_failure_not_a_crash() -> None:
    """One corrupted byte (found by the corruption test's wider search) passes flatbuffer verification and
    runs in LiteRT, but kills TFLM with SIGFPE at invoke. The gate runs TFLM in a child process: the
    verdict is `tflm_runs` failed, and the caller lives on."""
    data = bytearray(MODEL)
    data[6345] = 48
    val = load_validation_set(SAMPLE / "val.npz").every(97)
    report = validate_model(bytes(data), load_profile("esp32s3"), DEPLOY, val=val)
    assert [c.name for c in report.failures()] == ["tflm_runs"]
    assert report.check("tflm_runs").detail == "TFLM crashed (SIGFPE) on this model"
    assert report.arena_bytes == 0 and report.golden is None
