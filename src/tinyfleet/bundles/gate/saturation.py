"""Which layers' activations can saturate, and how a saturated int8 value is recognised.

A value at -128 or 127 is saturated when that limit stands for a non-zero real value: the layer's range was
too narrow to hold it. A limit that encodes exactly zero (the -128 of a ReLU output, zero point -128) is the
activation doing its job, not saturation; likewise the -128 of a standalone activation op with a finite
minimum (GELU, ELU, HARD_SWISH, ...), where calibration maps the function's floor to -128. Ops whose output
range is fixed by the int8 spec (softmax,
logistic, tanh) are not layers in this sense, and reshape-like ops repeat their input's values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .graph import PASS_THROUGH_OPS, ModelGraph

FIXED_RANGE_OPS = frozenset({"SOFTMAX", "LOGISTIC", "TANH", "LOG_SOFTMAX"})
BOUNDED_BELOW_OPS = frozenset({"RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "GELU", "ELU", "HARD_SWISH"})


@dataclass(frozen=True)
class Layer:
    op_index: int
    op_name: str
    tensor: int
    tensor_name: str
    count_low: bool  # -128 encodes a negative value
    count_high: bool  # 127 encodes a positive value

    @property
    def label(self) -> str:
        return f"{self.op_index}:{self.op_name}"

    def count_at_limits(self, act: np.ndarray) -> int:
        n = 0
        if self.count_low:
            n += int(np.count_nonzero(act == -128))
        if self.count_high:
            n += int(np.count_nonzero(act == 127))
        return n


def layers(graph: ModelGraph) -> list[Layer]:
    out = []
    for op in graph.ops:
        if op.name in FIXED_RANGE_OPS or op.name in PASS_THROUGH_OPS:
            continue
        for t in op.outputs:
            info = graph.tensors[t]
            if info.dtype != "int8" or info.scale <= 0:
                continue
            count_low = info.zero_point > -128 and op.name not in BOUNDED_BELOW_OPS
            out.append(Layer(op.index, op.name, t, info.name, count_low, info.zero_point < 127))
    return out
