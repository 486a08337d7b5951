"""The committed validation set and calibration are exactly what models/dataset.py makes from its seeds."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyfleet.bundles.components import Calibration, Thresholds

MODELS = Path(__file__).resolve().parents[2] / "models"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"_models_{name}", MODELS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def dataset():
    return _module("dataset")


def test_committed_validation_set_regenerates_bit_exactly(dataset) -> None:
    fresh = dataset.validation_set()
    with np.load(MODELS / "sample" / "val.npz", allow_pickle=False) as v:
        assert np.array_equal(v["inputs"], fresh.inputs)
        assert np.array_equal(v["labels"], fresh.labels)
        for tag in dataset.TAGS:
            assert np.array_equal(v[f"tag_{tag}"], fresh.tags[tag])
        assert tuple(v["classes"]) == dataset.signals.FAULTS
        assert str(v["feature_extractor"]) == "vib-window-v1"


def test_every_stratum_and_class_is_represented(dataset) -> None:
    v = dataset.validation_set()
    assert len(v) == 1000 and np.bincount(v.labels).tolist() == [250] * 4
    cells = {(int(y), t, n, o) for y, t, n, o in zip(v.labels, *(v.tags[k] for k in dataset.TAGS), strict=True)}
    assert len(cells) == 4 * 3 * 2 * 3


def test_calibration_baseline_comes_from_the_calibrated_training_data(dataset) -> None:
    committed = json.loads((MODELS / "sample" / "calibration.json").read_text())
    assert committed == dataset.calibration_json(dataset.training_set().calibrated)
    cal = Calibration.from_json(committed)
    assert cal.sample_rate_hz == 1000 and len(cal.channels) == 3
    assert Calibration.decode(cal.encode()) == cal


def test_thresholds_json_is_accepted_by_the_bundle_component(dataset) -> None:
    th = Thresholds.from_json(json.loads((MODELS / "sample" / "thresholds.json").read_text()))
    assert [c.label for c in th.classes] == list(dataset.signals.FAULTS)
    assert [c.alarm for c in th.classes] == [False, True, True, True]


def test_saturating_fixture_is_the_sample_with_one_range_narrowed() -> None:
    edit = _module("fixture_edit")
    sample = (MODELS / "sample" / "vibration_int8.tflite").read_bytes()
    assert edit.narrow_conv_range(sample, 2, 4.0) == (MODELS / "fixtures" / "saturating.tflite").read_bytes()
