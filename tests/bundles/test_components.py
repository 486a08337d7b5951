"""Payload records: thresholds, calibration, health vectors (encode/decode, JSON, errors)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinyfleet.bundles import (
    Calibration,
    ChannelCalibration,
    ClassThreshold,
    ComponentFormatError,
    HealthVectors,
    Thresholds,
)


@given(
    st.lists(
        st.builds(
            ClassThreshold,
            st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=16),
            st.integers(-128, 127),
            st.booleans(),
        ),
        min_size=1,
        max_size=64,
    )
)
def test_thresholds_round_trip(classes: list[ClassThreshold]) -> None:
    t = Thresholds(tuple(classes))
    assert Thresholds.decode(t.encode()) == t
    assert Thresholds.from_json(t.to_json()) == t
    assert len(t.encode()) == 8 + 20 * len(classes)


@given(
    st.integers(1, 2**32 - 1),
    st.lists(
        st.builds(
            ChannelCalibration,
            st.integers(-(2**31), 2**31 - 1),
            st.integers(1, 2**31 - 1),
            st.integers(-(2**31), 2**31 - 1),
            st.integers(0, 2**32 - 1),
        ),
        min_size=1,
        max_size=16,
    ),
)
def test_calibration_round_trip(rate: int, chans: list[ChannelCalibration]) -> None:
    c = Calibration(rate, tuple(chans))
    assert Calibration.decode(c.encode()) == c
    assert Calibration.from_json(c.to_json()) == c


def test_calibration_apply_is_the_documented_fixed_point() -> None:
    ch = ChannelCalibration(offset=100, gain_q16=98304, baseline_mean_q8=0, baseline_std_q8=0)  # gain 1.5
    assert ch.apply(200) == 150
    assert ch.apply(-32768) == -32768  # saturates
    assert ch.apply(32767) == 32767
    assert ChannelCalibration(0, 65536, 0, 0).apply(-7) == -7
    assert ChannelCalibration(1, 65536, 0, 0).apply(0) == -1  # arithmetic shift of a negative product


def test_health_vectors_round_trip_and_size_check() -> None:
    hv = HealthVectors(3, 2, ((b"abc", b"xy"), (b"def", b"zw")))
    assert HealthVectors.decode(hv.encode()) == hv
    with pytest.raises(ComponentFormatError, match="health vector 0 is 2\\+2 bytes, expected 3\\+2"):
        HealthVectors(3, 2, ((b"ab", b"xy"),)).encode()
    with pytest.raises(ComponentFormatError, match="does not match"):
        HealthVectors.decode(hv.encode()[:-1])


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({}, 'must be an object with a "classes" list'),
        ({"classes": [{"label": "a", "min_score": 300}]}, "'min_score' must be an integer in -128..127"),
        ({"classes": [{"label": "a" * 17, "min_score": 0}]}, "must be 1..16 ASCII"),
        ({"classes": [{"min_score": 0}]}, 'string "label"'),
        ({"classes": []}, "need 1..64 classes"),
    ],
)
def test_thresholds_json_errors_name_the_problem(obj: object, message: str) -> None:
    with pytest.raises(ComponentFormatError, match=message):
        Thresholds.from_json(obj)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([], '"channels" list'),
        ({"channels": [], "sample_rate_hz": 100}, "needs 1..16 channels"),
        ({"channels": [{"offset": 0, "gain_q16": 0, "baseline_mean_q8": 0, "baseline_std_q8": 1}],
          "sample_rate_hz": 100}, "'gain_q16' must be an integer in 1.."),
        ({"channels": [{"offset": 0}], "sample_rate_hz": 100}, "'gain_q16' must be an integer"),
        ({"channels": [], "sample_rate_hz": "fast"}, "'sample_rate_hz' must be an integer"),
    ],
)
def test_calibration_json_errors_name_the_problem(obj: object, message: str) -> None:
    with pytest.raises(ComponentFormatError, match=message):
        Calibration.from_json(obj)


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"TFT", "shorter than"), (b"XXXX\x01\x00\x01\x00" + bytes(20), "does not start with TFTH"),
     (b"TFTH\x02\x00\x01\x00" + bytes(20), "version 2 is not supported")],
)
def test_thresholds_decode_errors(data: bytes, message: str) -> None:
    with pytest.raises(ComponentFormatError, match=message):
        Thresholds.decode(data)
