"""The model's graph as plain data (tensors, operators), and what follows from it alone: float ops, MACs.

Built from the host interpreter's tensor and operator details (`litert_run.read_graph`); everything here is
pure and tested on hand-made graphs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..manifest import DType, TensorSpec
from .errors import GateInputError

_DTYPES = {"int8": DType.INT8, "uint8": DType.UINT8, "int16": DType.INT16, "float32": DType.FLOAT32}
# Ops whose output only re-labels its input's bytes: same values, same quantization.
PASS_THROUGH_OPS = frozenset({"RESHAPE", "SQUEEZE", "EXPAND_DIMS"})


@dataclass(frozen=True)
class TensorInfo:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy name: int8, float32, int32...
    scale: float  # 0.0 when not quantized (first scale when per-axis)
    zero_point: int
    constant: bool = False


@dataclass(frozen=True)
class OpInfo:
    index: int
    name: str  # builtin operator name, e.g. CONV_2D
    inputs: tuple[int, ...]  # -1 marks an omitted optional input
    outputs: tuple[int, ...]


@dataclass(frozen=True)
class ModelGraph:
    tensors: dict[int, TensorInfo]
    ops: tuple[OpInfo, ...]
    input: int
    output: int

    def spec(self, index: int) -> TensorSpec:
        t = self.tensors[index]
        if t.dtype not in _DTYPES:
            raise GateInputError(f"tensor {t.name!r} has dtype {t.dtype}, which a bundle cannot carry")
        return TensorSpec(t.shape, _DTYPES[t.dtype], float(t.scale), int(t.zero_point))

    def float_ops(self) -> list[OpInfo]:
        """Operators that read or write a float32 tensor (weights included)."""
        return [
            op
            for op in self.ops
            if any(i >= 0 and self.tensors[i].dtype == "float32" for i in (*op.inputs, *op.outputs))
        ]

    def op_macs(self, op: OpInfo) -> int:
        """Multiply-accumulates of one invocation; 0 for ops without a weight contraction."""

        def shape(pos: int) -> tuple[int, ...]:
            return self.tensors[op.inputs[pos]].shape

        out = math.prod(self.tensors[op.outputs[0]].shape)
        if op.name == "CONV_2D":
            _, kh, kw, cin = shape(1)
            return out * kh * kw * cin
        if op.name == "DEPTHWISE_CONV_2D":
            _, kh, kw, _ = shape(1)
            return out * kh * kw
        if op.name == "FULLY_CONNECTED":
            return out * shape(1)[-1]
        if op.name == "TRANSPOSE_CONV":
            cout, kh, kw, _ = shape(1)
            return math.prod(shape(2)) * kh * kw * cout
        if op.name == "BATCH_MATMUL":
            return out * shape(0)[-1]
        return 0

    def macs(self) -> int:
        return sum(self.op_macs(op) for op in self.ops)


def check_single_io(n_inputs: int, n_outputs: int) -> None:
    if n_inputs != 1 or n_outputs != 1:
        raise GateInputError(
            f"model has {n_inputs} input and {n_outputs} output tensors; a bundle carries exactly one of each"
        )
