"""Golden vectors: K validation inputs, stratified by class, with TFLM's exact outputs for them.

The device replays them after an update and requires identical output bytes (docs/bundle-format.md,
"Health vectors"). Selection is deterministic: classes take turns (lowest label first) until K are
chosen or the set runs out, and each class's picks are spread evenly over its samples in file order.
"""

from __future__ import annotations

import numpy as np

from ..components import HealthVectors


def stratified_indices(labels: np.ndarray, k: int) -> list[int]:
    classes = sorted(int(c) for c in np.unique(labels))
    members = {c: np.flatnonzero(labels == c) for c in classes}
    counts = dict.fromkeys(classes, 0)
    remaining = min(k, int(labels.shape[0]))
    while remaining:
        for c in classes:
            if remaining and counts[c] < len(members[c]):
                counts[c] += 1
                remaining -= 1
    picks = []
    for c in classes:
        m, n = members[c], counts[c]
        picks += [int(m[(2 * j + 1) * len(m) // (2 * n)]) for j in range(n)]
    return sorted(picks)


def golden_vectors(
    inputs: np.ndarray, outputs: np.ndarray, indices: list[int], input_bytes: int, output_bytes: int
) -> HealthVectors:
    """`inputs` and `outputs` hold the model's tensors per sample; bytes in C order, as TFLM holds them."""
    vectors = tuple(
        (np.ascontiguousarray(inputs[i]).tobytes(), np.ascontiguousarray(outputs[i]).tobytes()) for i in indices
    )
    return HealthVectors(input_bytes, output_bytes, vectors)
