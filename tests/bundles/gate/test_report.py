"""The report's JSON is stable: same inputs give identical bytes (its SHA-256 is signed in the manifest)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tinyfleet.bundles.gate import load_float_reference, load_validation_set, validate_model
from tinyfleet.bundles.manifest import Deployment
from tinyfleet.bundles.profiles import load_profile

MODELS = Path(__file__).resolve().parents[3] / "models"
DEPLOY = Deployment(min_battery_pct=20, max_latency_ms=50, peak_ram_bytes=32 * 1024, target_environments=("temp:hot",))


def _json(model: str) -> str:
    val = load_validation_set(MODELS / "sample" / "val.npz").every(7)
    ref = load_float_reference(MODELS / "sample" / "vibration_float.tflite")
    data = (MODELS / f"{model}.tflite").read_bytes()
    return validate_model(data, load_profile("stm32l4"), DEPLOY, val=val, float_ref=ref).to_json()


def test_same_inputs_give_identical_bytes() -> None:
    assert _json("sample/vibration_int8") == _json("sample/vibration_int8")
    assert _json("fixtures/unsupported_op") == _json("fixtures/unsupported_op")


def test_json_is_sorted_and_carries_what_was_checked() -> None:
    text = _json("sample/vibration_int8")
    doc = json.loads(text)
    assert text == json.dumps(doc, sort_keys=True, indent=2) + "\n"
    assert doc["passed"] is True
    assert doc["profile"]["name"] == "stm32l4"
    assert doc["deployment"]["target_environments"] == ["temp:hot"]
    assert doc["validation_set"]["samples"] == 143
    assert doc["float_reference"]["kind"] == "tflite"
    assert doc["golden_vectors"]["count"] == 8
    assert [c["status"] for c in doc["checks"]] == ["pass"] * 8
    assert not re.search(r"\d{4}-\d\d-\d\dT|timestamp|created|/work/|/tmp/", text)  # no clock, no paths
    assert doc["input"] == {"shape": [1, 256, 3], "dtype": "int8", "scale": 0.0078125, "zero_point": 0}


def test_a_different_model_gives_a_different_report() -> None:
    assert _json("sample/vibration_int8") != _json("fixtures/saturating")
