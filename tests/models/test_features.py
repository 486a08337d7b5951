"""Feature extractor vib-window-v1: the integer arithmetic docs/models.md specifies, sample by sample."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tinyfleet.bundles.manifest import DType, TensorSpec

MODELS = Path(__file__).resolve().parents[2] / "models"


@pytest.fixture(scope="module")
def features():
    from tinyfleet.bundles import features as mod

    return mod


def _scalar_reference(window: np.ndarray) -> np.ndarray:
    """The spec written out as the C++ loop would be: int32 sums, arithmetic shifts, saturation."""
    out = np.zeros(window.shape, dtype=np.int8)
    for c in range(window.shape[1]):
        total = 0
        for n in range(window.shape[0]):
            total += int(window[n, c])
        mean = total >> 8
        for n in range(window.shape[0]):
            q = (int(window[n, c]) - mean + 1) >> 1
            out[n, c] = max(-128, min(127, q))
    return out


def test_matches_the_scalar_specification(features) -> None:
    rng = np.random.default_rng(7)
    for scale in (10, 200, 20000):
        w = np.clip(rng.normal(0, scale, size=(256, 3)) + rng.integers(-2000, 2000, size=3), -32768, 32767)
        w = w.astype(np.int16)
        assert np.array_equal(features.extract(w), _scalar_reference(w))


def test_removes_the_window_mean_and_saturates(features) -> None:
    w = np.full((256, 3), 1000, dtype=np.int16)  # gravity only: nothing left
    assert not features.extract(w).any()
    w[0, 0] = 32767
    q = features.extract(w)
    assert q[0, 0] == 127 and q[1, 0] == (1000 - (1000 * 255 + 32767) // 256 + 1) >> 1
    assert features.extract(-w)[0, 0] == -128


def test_batches_and_refuses_other_shapes(features) -> None:
    w = np.random.default_rng(1).integers(-500, 500, size=(5, 256, 3)).astype(np.int16)
    assert np.array_equal(features.extract(w)[3], features.extract(w[3]))
    with pytest.raises(ValueError, match="vib-window-v1 takes int16 windows"):
        features.extract(np.zeros((128, 3), np.int16))
    with pytest.raises(ValueError):
        features.extract(np.zeros((256, 3), np.float32))


@pytest.mark.parametrize("spec,problem", [
    (TensorSpec((1, 256, 3), DType.INT8, 1 / 128, 0), None),
    (TensorSpec((256, 3), DType.INT8, 1 / 128, 0), None),
    (TensorSpec((1, 64, 3), DType.INT8, 1 / 128, 0), r"the model's input is int8 \[1, 64, 3\]"),
    (TensorSpec((2, 256, 3), DType.INT8, 1 / 128, 0), r"input is int8 \[2, 256, 3\]"),
    (TensorSpec((1, 256, 3), DType.UINT8, 1 / 128, 0), "input is uint8"),
    (TensorSpec((1, 256, 3), DType.INT8, 1 / 64, 0), "scale 0.015625"),
    (TensorSpec((1, 256, 3), DType.INT8, 1 / 128, 1), "zero point 1"),
])  # fmt: skip
def test_a_model_input_the_extractor_cannot_feed_is_named(spec: TensorSpec, problem: str | None) -> None:
    from tinyfleet.bundles.release import feature_input_mismatch

    found = feature_input_mismatch("vib-window-v1", spec)
    assert (found is None) if problem is None else re.search(problem, found or ""), found
    assert "not one devices have" in (feature_input_mismatch("", spec) or "")
