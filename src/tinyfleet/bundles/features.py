"""Feature extractor `vib-window-v1`: calibrated int16 samples to the model's int8 input (numpy only).

The firmware implements the same integer arithmetic in C++ (device/src/features/vib_window_v1.cpp, tested
bit-exact against this module; docs/models.md, "Feature extractor"); this is the reference the sample models
were trained with and the model gate uses. Per window of WINDOW samples of each of CHANNELS
channels (calibrated milli-g):

    mean_c = (sum_n s[n][c]) >> 8              # int32 sum, arithmetic shift = floor(sum / 256)
    q[n][c] = clamp_i8((s[n][c] - mean_c + 1) >> 1)

so one input step is 2 mg with the window's mean (gravity, sensor offset) removed; the model's input
tensor is quantized with scale 1/128 and zero point 0.
"""

from __future__ import annotations

import numpy as np

VERSION = "vib-window-v1"
WINDOW = 256
CHANNELS = 3
SHIFT = 1
INPUT_SCALE = 1.0 / 128.0
INPUT_ZERO_POINT = 0


def extract(calibrated: np.ndarray) -> np.ndarray:
    """(..., WINDOW, CHANNELS) int16 calibrated samples to (..., WINDOW, CHANNELS) int8 model input."""
    s = np.asarray(calibrated)
    if s.dtype != np.int16 or s.shape[-2:] != (WINDOW, CHANNELS):
        raise ValueError(f"{VERSION} takes int16 windows of shape (..., {WINDOW}, {CHANNELS}), got {s.dtype} {s.shape}")
    wide = s.astype(np.int32)
    mean = wide.sum(axis=-2, keepdims=True, dtype=np.int32) >> 8
    q = (wide - mean + (1 << (SHIFT - 1))) >> SHIFT
    return np.clip(q, -128, 127).astype(np.int8)

