"""The device's C++ feature extractor (device/src/features, through tinyfleet._agent) against the Python
reference the model gate uses (tinyfleet.bundles.features): bit for bit on every window of the validation
set, on windows at the int16 limits and on random windows placed anywhere in a wrapping ring; and fleet-sim's
devices run it on their own sample ring."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyfleet import _agent
from tinyfleet.bundles import features

ROOT = Path(__file__).resolve().parents[2]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"_scripts_{name}", ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def device_extract(window: np.ndarray, ring_frames: int | None = None, first: int = 0) -> np.ndarray:
    """The C++ extractor on `window`, laid out in a ring of `ring_frames` frames starting at slot `first`."""
    n = ring_frames or features.WINDOW
    ring = np.full((n, features.CHANNELS), 12345, dtype="<i2")
    slots = (first + np.arange(features.WINDOW)) % n
    ring[slots] = window
    out = _agent.extract_features(features.VERSION, ring.tobytes(), first)
    return np.frombuffer(out, dtype=np.int8).reshape(features.WINDOW, features.CHANNELS)


@pytest.fixture(scope="module")
def validation_windows() -> np.ndarray:
    return _script("gen_feature_windows")._dataset().validation_set().calibrated


def test_every_validation_window_is_bit_exact(validation_windows: np.ndarray) -> None:
    with np.load(ROOT / "models" / "sample" / "val.npz", allow_pickle=False) as val:
        expected = val["inputs"]
    assert validation_windows.shape == (1000, features.WINDOW, features.CHANNELS)
    reference = features.extract(validation_windows)
    assert np.array_equal(reference, expected)
    differing = [i for i, w in enumerate(validation_windows) if not np.array_equal(device_extract(w), reference[i])]
    assert differing == []
    # The same windows wrapped around the end of a 300-frame ring, at every start offset in turn.
    wrapped = [i for i, w in enumerate(validation_windows)
               if not np.array_equal(device_extract(w, 300, (i * 7) % 300), reference[i])]  # fmt: skip
    assert wrapped == []


def test_edge_windows_are_bit_exact() -> None:
    edges = _script("gen_feature_windows").edge_windows(features.WINDOW, features.CHANNELS)
    names = [name for name, _ in edges]
    assert {"all -32768", "all 32767", "alternating -32768, 32767"} <= set(names)
    for name, w in edges:
        for ring_frames, first in ((None, 0), (257, 200), (1000, 999)):
            assert np.array_equal(device_extract(w, ring_frames, first), features.extract(w)), (name, first)


def test_random_windows_at_every_scale_are_bit_exact() -> None:
    rng = np.random.default_rng(16)
    for scale in (1, 3, 100, 3000, 40000):
        for _ in range(40):
            noise = rng.normal(0, scale, size=(features.WINDOW, features.CHANNELS))
            w = np.clip(noise + rng.integers(-30000, 30000, size=features.CHANNELS), -32768, 32767).astype(np.int16)
            ring_frames = int(rng.integers(features.WINDOW, 700))
            first = int(rng.integers(0, ring_frames))
            assert np.array_equal(device_extract(w, ring_frames, first), features.extract(w)), (scale, first)


def test_bad_calls_are_refused_with_a_reason() -> None:
    ok = np.zeros((features.WINDOW, features.CHANNELS), "<i2").tobytes()
    with pytest.raises(ValueError, match="unknown feature extractor: vib-window-v2"):
        _agent.extract_features("vib-window-v2", ok)
    with pytest.raises(ValueError, match="whole frames of 3 int16 samples, at least 256"):
        _agent.extract_features(features.VERSION, ok[:-6])
    with pytest.raises(ValueError, match="whole frames"):
        _agent.extract_features(features.VERSION, ok + b"\0")
    with pytest.raises(ValueError, match="first must be a frame slot"):
        _agent.extract_features(features.VERSION, ok, features.WINDOW)


def test_a_fleet_sim_device_feeds_its_model_the_device_extractors_output() -> None:
    """fleet-sim's sense(): sensor window -> the agent's calibration and sample ring -> the C++ extractor -> the
    model. The input the model receives is the reference's output on the ring's calibrated frames."""
    from tinyfleet.bundles.signing import generate_private_key, public_der
    from tinyfleet.simulator import releases
    from tinyfleet.simulator.fleet import Fleet, FleetSpec, plan_devices

    key = generate_private_key()
    fleet = Fleet([public_der(key.public_key())])
    plan = plan_devices(FleetSpec(1, seed=3, mix={"stm32l4": 1.0}))[0]
    dev = fleet.add(plan)
    dev.provision(releases.build(releases.Release("fe-1.0.0", counter=1), plan.hw, key))
    dev.agent.boot()  # what power_on() does, without a broker link
    dev.platform.image = dev.platform.find_image(dev.agent.running_digest)
    dev.powered = True
    assert dev.agent.feature_extractor == features.VERSION
    seen: list[tuple[bytes, np.ndarray]] = []
    infer = dev.platform.infer

    def recording(data: bytes, output_len: int) -> tuple[bytes, int, int]:
        frames = np.frombuffer(dev.agent.latest_frames(features.WINDOW), dtype="<i2").reshape(features.WINDOW, 3)
        seen.append((data, frames.astype(np.int16)))
        return infer(data, output_len)

    dev.platform.infer = recording  # type: ignore[method-assign]
    try:
        for _ in range(3):
            dev.sense()
    finally:
        dev.platform.infer = infer  # type: ignore[method-assign]  # no cycle through the C++ device left behind
    assert len(seen) == 3
    for data, frames in seen:
        assert frames.any()
        assert data == features.extract(frames).tobytes()
