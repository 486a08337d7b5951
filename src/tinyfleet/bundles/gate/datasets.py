"""Validation sets and float references, read from disk and checked before the gate uses them.

Validation set: an `.npz` with `inputs` (N x the model's input shape, batch dimension optional, the model's
input dtype) and `labels` (N integers, the expected output index); optional `classes` (label names) and
`tag_<name>` arrays (N strings each, the environment stratum of each sample). Float reference: a float
`.tflite` run on the dequantized inputs, or its outputs saved as `.npy` / `.npz` (array `outputs`, N rows).
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import GateInputError


@dataclass(frozen=True)
class ValidationSet:
    inputs: np.ndarray
    labels: np.ndarray  # (N,) int64
    classes: tuple[str, ...] = ()
    tags: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def take(self, indices: np.ndarray | list[int]) -> ValidationSet:
        idx = np.asarray(indices, dtype=np.int64)
        return ValidationSet(
            self.inputs[idx], self.labels[idx], self.classes, {k: v[idx] for k, v in self.tags.items()}
        )

    def every(self, step: int) -> ValidationSet:
        """Every `step`-th sample. It keeps the strata mix only when `step` shares no factor with the
        order the set cycles through its cells (the sample set cycles through 72: use 5, 7, 11...)."""
        return self.take(np.arange(0, len(self), step))

    def digest(self) -> str:
        h = hashlib.sha256()
        h.update(str(self.inputs.dtype).encode() + str(self.inputs.shape).encode())
        h.update(np.ascontiguousarray(self.inputs).tobytes())
        h.update(self.labels.astype("<i8").tobytes())
        return h.hexdigest()


@dataclass(frozen=True)
class FloatReference:
    model: bytes | None = None  # a float .tflite
    outputs: np.ndarray | None = None  # or its outputs, (N, ...)

    def take(self, indices: np.ndarray | list[int]) -> FloatReference:
        if self.outputs is None:
            return self
        return FloatReference(None, self.outputs[np.asarray(indices, dtype=np.int64)])


def _load_npz(path: Path, what: str) -> dict[str, np.ndarray]:
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise GateInputError(f"{what} {path}: expected an .npz archive of named arrays")
        with data:
            return {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise GateInputError(f"{what} {path}: no such file") from None
    except GateInputError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise GateInputError(f"{what} {path}: not a readable .npz file ({e.__class__.__name__}: {e})") from None


def load_validation_set(path: Path) -> ValidationSet:
    path = Path(path)
    arrays = _load_npz(path, "validation set")
    for key in ("inputs", "labels"):
        if key not in arrays:
            raise GateInputError(f"validation set {path}: missing array {key!r} (it has: {', '.join(sorted(arrays))})")
    inputs, labels = arrays["inputs"], arrays["labels"]
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise GateInputError(
            f"validation set {path}: 'labels' must be a 1-D integer array, got {labels.dtype} {labels.shape}"
        )
    if inputs.ndim < 2 or inputs.shape[0] != labels.shape[0]:
        raise GateInputError(
            f"validation set {path}: {inputs.shape[0] if inputs.ndim else 0} inputs but {labels.shape[0]} labels"
        )
    if labels.shape[0] == 0:
        raise GateInputError(f"validation set {path}: it holds no samples")
    if labels.min() < 0:
        raise GateInputError(f"validation set {path}: negative label {int(labels.min())}")
    classes: tuple[str, ...] = ()
    if "classes" in arrays:
        c = arrays["classes"]
        if c.ndim != 1 or c.dtype.kind != "U":
            raise GateInputError(f"validation set {path}: 'classes' must be a 1-D string array")
        classes = tuple(str(s) for s in c)
        if int(labels.max()) >= len(classes):
            raise GateInputError(f"validation set {path}: label {int(labels.max())} has no entry in 'classes'")
    tags = {}
    for key, arr in arrays.items():
        if key.startswith("tag_"):
            if arr.shape != labels.shape or arr.dtype.kind != "U":
                raise GateInputError(f"validation set {path}: {key!r} must hold one string per sample")
            tags[key[4:]] = arr
    return ValidationSet(inputs, labels.astype(np.int64), classes, tags)


def load_float_reference(path: Path) -> FloatReference:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        try:
            return FloatReference(model=path.read_bytes())
        except OSError as e:
            raise GateInputError(f"float reference {path}: cannot read it ({e.strerror})") from None
    if suffix == ".npz":
        arrays = _load_npz(path, "float reference")
        if "outputs" not in arrays:
            raise GateInputError(f"float reference {path}: missing array 'outputs'")
        out = arrays["outputs"]
    elif suffix == ".npy":
        try:
            out = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise GateInputError(f"float reference {path}: no such file") from None
        except (OSError, ValueError, EOFError) as e:
            raise GateInputError(f"float reference {path}: not a readable .npy file ({e})") from None
    else:
        raise GateInputError(f"float reference {path}: expected a .tflite model or .npy/.npz outputs")
    if out.ndim < 1 or out.shape[0] == 0 or out.dtype.kind not in "fiu":
        raise GateInputError(f"float reference {path}: outputs must be a numeric array with one row per sample")
    return FloatReference(outputs=out)
