"""The sample models' synthetic data sets, reproducible from their seeds (numpy only).

Every window is one (fault, environment stratum) cell drawn from `src/tinyfleet/simulator/signals.py` with its own
generator `default_rng([seed, index])`, so a window does not depend on how many came before it. Both sets
cover every cell in turn: 4 conditions x 18 strata (3 temperature bands x 2 noise levels x 3 mountings).
Usable from the TensorFlow venv and the project venv alike: it loads its two siblings by path.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

_SRC = Path(__file__).resolve().parents[1] / "src" / "tinyfleet"


def _load(name: str, path: Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


signals = _load("_tinyfleet_signals", _SRC / "simulator" / "signals.py")
features = _load("_tinyfleet_features", _SRC / "bundles" / "features.py")

TRAIN_SEED = 20261125
VAL_SEED = 20261126
TRAIN_PER_CELL = 50
VAL_SIZE = 1000
TAGS = ("temperature", "noise", "orientation")


@dataclass(frozen=True)
class Dataset:
    inputs: np.ndarray  # (N, WINDOW, CHANNELS) int8, the model's input
    calibrated: np.ndarray  # (N, WINDOW, CHANNELS) int16, calibrated milli-g
    labels: np.ndarray  # (N,) int64, index into signals.FAULTS
    tags: dict[str, np.ndarray]  # environment tag name -> (N,) str

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def cells() -> list[tuple[int, object]]:
    """Every (fault index, environment) pair, in a fixed order."""
    return [(f, env) for env in signals.all_environments() for f in range(len(signals.FAULTS))]


def sensor() -> object:
    return signals.Sensor()


def calibration_constants() -> tuple[np.ndarray, np.ndarray]:
    """Per-channel offset and Q16.16 gain of the nominal sensor at the reference temperature."""
    s = signals.Sensor()
    return np.asarray(s.offset_counts, dtype=np.int64), np.full(3, s.nominal_gain_q16(), dtype=np.int64)


def generate(seed: int, count: int) -> Dataset:
    """`count` windows; window i is cell i mod 72."""
    all_cells = cells()
    offsets, gains = calibration_constants()
    s = signals.Sensor()
    cal = np.empty((count, features.WINDOW, features.CHANNELS), dtype=np.int16)
    labels = np.empty(count, dtype=np.int64)
    tags: dict[str, list[str]] = {t: [] for t in TAGS}
    for i in range(count):
        fault, env = all_cells[i % len(all_cells)]
        rng = np.random.default_rng([seed, i])
        raw = signals.raw_window(rng, signals.FAULTS[fault], env, features.WINDOW, s)
        cal[i] = signals.calibrate(raw, offsets, gains)
        labels[i] = fault
        for k, v in env.tags().items():
            tags[k].append(v)
    return Dataset(features.extract(cal), cal, labels, {k: np.asarray(v) for k, v in tags.items()})


def training_set() -> Dataset:
    return generate(TRAIN_SEED, TRAIN_PER_CELL * len(cells()))


def validation_set() -> Dataset:
    return generate(VAL_SEED, VAL_SIZE)


def baseline_q8(calibrated: np.ndarray) -> tuple[list[int], list[int]]:
    """Per-channel mean and standard deviation of calibrated samples, in calibrated units x 256."""
    flat = calibrated.reshape(-1, calibrated.shape[-1]).astype(np.float64)
    return [round(m * 256) for m in flat.mean(axis=0)], [round(sd * 256) for sd in flat.std(axis=0)]


def calibration_json(calibrated: np.ndarray) -> dict:
    """The calibration component's JSON (docs/bundle-format.md), baseline from these calibrated samples."""
    offsets, gains = calibration_constants()
    means, stds = baseline_q8(calibrated)
    return {
        "sample_rate_hz": signals.Sensor().sample_rate_hz,
        "channels": [
            {"offset": int(o), "gain_q16": int(g), "baseline_mean_q8": m, "baseline_std_q8": sd}
            for o, g, m, sd in zip(offsets, gains, means, stds, strict=True)
        ],
    }


def digest(ds: Dataset) -> str:
    """SHA-256 over the model inputs, labels and tags: the manifest's dataset_digest."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(ds.inputs).tobytes())
    h.update(ds.labels.astype("<i8").tobytes())
    for t in TAGS:
        h.update("\n".join(ds.tags[t].tolist()).encode())
    return h.hexdigest()


def save_validation_npz(ds: Dataset, path: Path) -> None:
    """The validation-set file the model gate reads (docs/model-gate.md, "Validation set")."""
    np.savez_compressed(
        path,
        inputs=ds.inputs,
        labels=ds.labels,
        classes=np.asarray(signals.FAULTS),
        feature_extractor=np.asarray(features.VERSION),
        **{f"tag_{k}": v for k, v in ds.tags.items()},
    )
