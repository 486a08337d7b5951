"""The sample model passes the gate on both built-in profiles, with every figure the issue asks for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinyfleet.bundles.gate import GateConfig, load_float_reference, load_validation_set, validate_model
from tinyfleet.bundles.manifest import Deployment, DType
from tinyfleet.bundles.profiles import load_profile

SAMPLE = Path(__file__).resolve().parents[3] / "models" / "sample"
DEPLOY = Deployment(min_battery_pct=20, max_latency_ms=50, peak_ram_bytes=32 * 1024)


@pytest.fixture(scope="module")
def val():
    return load_validation_set(SAMPLE / "val.npz").every(5)  # 200 samples, every stratum


@pytest.fixture(scope="module")
def float_ref():
    return load_float_reference(SAMPLE / "vibration_float.tflite")


@pytest.mark.parametrize("hw", ["esp32s3", "stm32l4"])
def test_sample_model_passes_every_check(hw: str, val, float_ref) -> None:
    model = (SAMPLE / "vibration_int8.tflite").read_bytes()
    r = validate_model(model, load_profile(hw), DEPLOY, val=val, float_ref=float_ref)
    assert r.passed, [(c.name, c.detail) for c in r.failures()]
    assert [c.status for c in r.checks] == ["pass"] * 8
    assert [c.name for c in r.checks] == [
        "full_integer",
        "tflm_runs",
        "memory",
        "latency",
        "accuracy",
        "float_drop",
        "saturation",
        "agreement",
    ]
    assert (r.input.shape, r.input.dtype, r.input.scale, r.input.zero_point) == ((1, 256, 3), DType.INT8, 1 / 128, 0)
    assert (r.output.shape, r.output.dtype, r.output.scale, r.output.zero_point) == ((1, 4), DType.INT8, 1 / 256, -128)
    assert 0 < r.arena_bytes < load_profile("stm32l4").model_sram_bytes
    assert r.check("memory").data["arena_bytes"] == r.arena_bytes
    assert r.check("accuracy").data["samples"] == 200
    assert r.check("accuracy").data["accuracy"] >= 0.95
    assert r.check("agreement").data["outputs"] == 800
    assert r.check("latency").data["is_estimate"] is True
    assert "estimated" in r.check("latency").figure
    assert r.macs == r.check("latency").data["macs"] > 0
    assert set(r.strata["noise=high"]) == {"samples", "accuracy", "float_accuracy"}


def test_macs_are_counted_from_the_graph(val) -> None:
    # Conv1D 8x9 s2, 16x5 s2, 16x5 s2, 24x3 s2 on 256x3, then Dense 24->4 (models/train.py).
    lengths = [124, 60, 28, 13]
    expected = lengths[0] * 8 * 9 * 3 + lengths[1] * 16 * 5 * 8 + lengths[2] * 16 * 5 * 16 + lengths[3] * 24 * 3 * 16
    expected += 4 * 24
    r = validate_model((SAMPLE / "vibration_int8.tflite").read_bytes(), load_profile("esp32s3"), DEPLOY)
    assert r.macs == expected


def test_without_a_validation_set_the_data_checks_are_skipped_not_failed() -> None:
    r = validate_model((SAMPLE / "vibration_int8.tflite").read_bytes(), load_profile("stm32l4"), DEPLOY)
    assert r.passed and r.golden is None
    assert [c.status for c in r.checks[4:]] == ["skip"] * 4
    assert all("no validation set" in c.detail for c in r.checks[4:])


def test_budgets_from_the_deployment_and_config_are_enforced(val) -> None:
    model = (SAMPLE / "vibration_int8.tflite").read_bytes()
    tight = Deployment(min_battery_pct=20, max_latency_ms=1, peak_ram_bytes=4096)
    r = validate_model(model, load_profile("stm32l4"), tight, val=val, config=GateConfig(min_accuracy=0.999))
    assert {c.name for c in r.failures()} == {"memory", "latency", "accuracy"}
    assert "peak RAM budget 4,096 B" in r.check("memory").detail
    assert "max_latency_ms 1" in r.check("latency").detail


def test_strata_report_accuracy_per_environment_tag_and_class(val) -> None:
    r = validate_model((SAMPLE / "vibration_int8.tflite").read_bytes(), load_profile("esp32s3"), DEPLOY, val=val)
    keys = set(r.strata)
    assert {"temperature=cold", "temperature=hot", "noise=high", "orientation=wall", "class=bearing"} <= keys
    per_class = sum(v["samples"] for k, v in r.strata.items() if k.startswith("class="))
    assert per_class == len(val)
    correct = sum(
        round(v["accuracy"] * v["samples"]) for k, v in r.strata.items() if k.startswith("noise=") and "&" not in k
    )
    assert correct == round(r.check("accuracy").data["accuracy"] * len(val))
    full = {k: v for k, v in r.strata.items() if k.count("&") == 2}
    assert len(full) == 18 and sum(v["samples"] for v in full.values()) == len(val)
    assert "noise=high&orientation=wall&temperature=cold" in full


def test_float_reference_outputs_file_equals_the_float_model(tmp_path: Path, val, float_ref) -> None:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=float_ref.model)
    it.allocate_tensors()
    d, o = it.get_input_details()[0], it.get_output_details()[0]
    outs = []
    for x in val.inputs:
        it.set_tensor(d["index"], (x[None].astype(np.float32) / 128))
        it.invoke()
        outs.append(it.get_tensor(o["index"])[0])
    np.save(tmp_path / "ref.npy", np.stack(outs))
    model = (SAMPLE / "vibration_int8.tflite").read_bytes()
    a = validate_model(model, load_profile("esp32s3"), DEPLOY, val=val, float_ref=float_ref)
    b = validate_model(
        model, load_profile("esp32s3"), DEPLOY, val=val, float_ref=load_float_reference(tmp_path / "ref.npy")
    )
    assert a.check("float_drop").data == b.check("float_drop").data
