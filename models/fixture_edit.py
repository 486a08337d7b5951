"""Make the saturating-layer fixture from the sample INT8 model by narrowing one activation's range.

Dividing the quantization scale of one convolution's output (and of the reshape-like tensors that
carry the same values) by D models a miscalibrated quantization: the layer's int8 range now covers only
1/D of the activations seen in calibration, so larger ones pin at 127. Producer and consumers read the
same tensor parameters, so the model stays a valid, consistent INT8 model; only the clipping changes.
The scales are patched in place, every other byte is the sample model's.
"""

from __future__ import annotations

import numpy as np

try:  # the project venv ships the schema with LiteRT, the training venv with TensorFlow
    from ai_edge_litert import schema_py_generated as schema
except ImportError:  # pragma: no cover - only in the TensorFlow venv
    from tensorflow.lite.python import schema_py_generated as schema

_PASS_THROUGH = {
    schema.BuiltinOperator.RESHAPE,
    schema.BuiltinOperator.SQUEEZE,
    schema.BuiltinOperator.EXPAND_DIMS,
}


def _opcode(model: schema.Model, op: schema.Operator) -> int:
    oc = model.OperatorCodes(op.OpcodeIndex())
    return max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())


def narrow_conv_range(tflite: bytes, conv_number: int, divisor: float) -> bytes:
    """The model with the output scale of its `conv_number`-th CONV_2D (from 0) divided by `divisor`."""
    buf = bytearray(tflite)
    model = schema.Model.GetRootAs(buf, 0)
    graph = model.Subgraphs(0)
    ops = [graph.Operators(i) for i in range(graph.OperatorsLength())]
    convs = [op for op in ops if _opcode(model, op) == schema.BuiltinOperator.CONV_2D]
    targets = [int(convs[conv_number].Outputs(0))]
    for op in ops:
        if _opcode(model, op) in _PASS_THROUGH and int(op.Inputs(0)) in targets:
            targets.append(int(op.Outputs(0)))
    for t in targets:
        scale = graph.Tensors(t).Quantization().ScaleAsNumpy()  # a writable view into buf
        scale[:] = (scale / np.float32(divisor)).astype(np.float32)
    return bytes(buf)
