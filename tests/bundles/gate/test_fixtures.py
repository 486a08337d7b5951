"""Every failing fixture in models/fixtures fails exactly its own check, with the figure that shows why."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinyfleet.bundles.gate import GateConfig, load_float_reference, load_validation_set, validate_model
from tinyfleet.bundles.manifest import Deployment
from tinyfleet.bundles.profiles import load_profile

MODELS = Path(__file__).resolve().parents[3] / "models"
# Generous bundle budgets, so only the profile and the model itself decide.
DEPLOY = Deployment(min_battery_pct=20, max_latency_ms=1000, peak_ram_bytes=1024 * 1024)


@pytest.fixture(scope="module")
def val():
    return load_validation_set(MODELS / "sample" / "val.npz").every(11)


@pytest.fixture(scope="module")
def float_ref():
    return load_float_reference(MODELS / "sample" / "vibration_float.tflite")


@pytest.mark.parametrize(
    ("model", "hw", "failing", "skipped", "detail"),
    [
        (
            "sample/vibration_float",
            "esp32s3",
            "full_integer",
            {"accuracy", "float_drop", "saturation", "agreement"},
            "input is float32; output is float32; 9 float ops",
        ),
        (
            "fixtures/float_io",
            "stm32l4",
            "full_integer",
            {"accuracy", "float_drop", "saturation", "agreement"},
            "2 float ops (DEQUANTIZE, QUANTIZE)",
        ),
        ("fixtures/arena_large", "stm32l4", "memory", set(), "exceeds the profile's 65,536 B of model SRAM"),
        ("fixtures/saturating", "stm32l4", "saturation", set(), "saturating layers: 3:CONV_2D"),
        (
            "fixtures/unsupported_op",
            "stm32l4",
            "tflm_runs",
            {"memory", "accuracy", "float_drop", "agreement"},
            "unsupported builtin op GELU",
        ),
    ],
)
def test_fixture_fails_exactly_its_check(model, hw, failing, skipped, detail, val, float_ref) -> None:
    r = validate_model(
        (MODELS / f"{model}.tflite").read_bytes(), load_profile(hw), DEPLOY, val=val, float_ref=float_ref
    )
    assert not r.passed
    assert [c.name for c in r.failures()] == [failing]
    assert {c.name for c in r.checks if c.skipped} == skipped
    assert detail in r.check(failing).detail


def test_arena_fixture_fits_the_bigger_profile(val) -> None:
    model = (MODELS / "fixtures" / "arena_large.tflite").read_bytes()
    r = validate_model(model, load_profile("esp32s3"), DEPLOY, val=val)
    assert r.passed
    assert load_profile("stm32l4").model_sram_bytes < r.arena_bytes <= load_profile("esp32s3").model_sram_bytes


def test_saturation_is_measured_per_layer(val, float_ref) -> None:
    r = validate_model(
        (MODELS / "fixtures" / "saturating.tflite").read_bytes(),
        load_profile("esp32s3"),
        DEPLOY,
        val=val,
        float_ref=float_ref,
    )
    layers = {p["layer"]: p for p in r.check("saturation").data["layers"]}
    assert [name for name, p in layers.items() if p["flagged"]] == ["3:CONV_2D"]
    assert layers["3:CONV_2D"]["share"] > 2 * GateConfig().max_saturation
    # the same model before its range was narrowed: that layer is not saturated
    ok = validate_model(
        (MODELS / "sample" / "vibration_int8.tflite").read_bytes(), load_profile("esp32s3"), DEPLOY, val=val
    )
    before = {p["layer"]: p for p in ok.check("saturation").data["layers"]}
    assert before["3:CONV_2D"]["share"] < 0.01
