"""The host TFLite interpreter (LiteRT), the gate's second opinion: graph, outputs, intermediate activations.

Built with TFLite's builtin (optimized, integer-exact) kernels, no delegate, and every tensor preserved: no
XNNPACK delegate rewrites the graph, so its outputs are comparable with TFLM's and each layer's activations
can be read after an invoke. (The reference kernels, `BUILTIN_REF`, gave the same outputs on the sample and
fixture models, 4 to 36 times slower.) LiteRT verifies the flatbuffer before use, so a truncated or foreign
file stops here, before TFLM sees it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from .errors import GateInputError
from .graph import ModelGraph, OpInfo, TensorInfo, check_single_io
from .saturation import Layer
from .stderr_capture import captured_fd2

TFLITE_IDENTIFIER = b"TFL3"


def load(model: bytes) -> Interpreter:
    if len(model) < 8 or model[4:8] != TFLITE_IDENTIFIER:
        raise GateInputError(f"not a TFLite model: no 'TFL3' flatbuffer identifier in its {len(model)} bytes")
    with captured_fd2():
        try:
            interp = Interpreter(
                model_content=model,
                experimental_preserve_all_tensors=True,
                experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            )
        except ValueError:
            interp = None
        if interp is None:
            raise GateInputError(
                f"truncated or corrupt TFLite model: its {len(model)} bytes fail flatbuffer verification"
            )
        try:
            interp.allocate_tensors()
        except RuntimeError as e:
            msg = " ".join(str(e).split())
            raise GateInputError(f"the host TFLite interpreter cannot prepare the model: {msg}") from None
    return interp


def read_graph(interp: Interpreter) -> ModelGraph:
    try:
        return _read_graph(interp)
    except (UnicodeDecodeError, ValueError, KeyError, IndexError, TypeError) as e:
        msg = " ".join(str(e).split())[:120]
        raise GateInputError(
            f"corrupt TFLite model: its tensors cannot be read ({e.__class__.__name__}: {msg})"
        ) from None


def _read_graph(interp: Interpreter) -> ModelGraph:
    ins, outs = interp.get_input_details(), interp.get_output_details()
    check_single_io(len(ins), len(outs))
    ops = tuple(
        OpInfo(
            int(d["index"]),
            str(d["op_name"]),
            tuple(int(i) for i in d["inputs"]),
            tuple(int(o) for o in d["outputs"]),
        )
        for d in interp._get_ops_details()
    )
    produced = {o for op in ops for o in op.outputs} | {int(ins[0]["index"])}
    tensors = {}
    for d in interp.get_tensor_details():
        q = d["quantization_parameters"]
        scales, zps = q["scales"], q["zero_points"]
        idx = int(d["index"])
        tensors[idx] = TensorInfo(
            index=idx,
            name=str(d["name"]),
            shape=tuple(int(s) for s in d["shape"]),
            dtype=np.dtype(d["dtype"]).name,
            scale=float(scales[0]) if len(scales) else 0.0,
            zero_point=int(zps[0]) if len(zps) else 0,
            constant=idx not in produced,
        )
    return ModelGraph(tensors, ops, int(ins[0]["index"]), int(outs[0]["index"]))


@dataclass(frozen=True)
class ReferenceRun:
    outputs: np.ndarray  # (N, *output shape)
    at_limit: dict[int, int]  # layer tensor index -> activations at a counted int8 limit, over the set
    totals: dict[int, int]  # layer tensor index -> activations seen


def run_reference(interp: Interpreter, graph: ModelGraph, inputs: np.ndarray, layers: list[Layer]) -> ReferenceRun:
    in_idx, out_idx = graph.input, graph.output
    shape = graph.tensors[in_idx].shape
    n = inputs.shape[0]
    outs = np.empty((n, *graph.tensors[out_idx].shape), dtype=np.dtype(graph.tensors[out_idx].dtype))
    # Activations are gathered per layer and counted once at the end: one numpy call per layer, not per sample.
    acts = {lay.tensor: np.empty((n, *graph.tensors[lay.tensor].shape), dtype=np.int8) for lay in layers}
    try:
        for i, x in enumerate(inputs):
            interp.set_tensor(in_idx, x.reshape(shape))
            interp.invoke()
            outs[i] = interp.get_tensor(out_idx)
            for t, buf in acts.items():
                buf[i] = interp.get_tensor(t)
    except (RuntimeError, ValueError) as e:
        msg = " ".join(str(e).split())[:160]
        raise GateInputError(f"the host TFLite interpreter cannot run the model: {msg}") from None
    at_limit = {lay.tensor: lay.count_at_limits(acts[lay.tensor]) for lay in layers}
    totals = {lay.tensor: int(acts[lay.tensor].size) for lay in layers}
    return ReferenceRun(outs, at_limit, totals)


def run_float_model(model: bytes, inputs: np.ndarray) -> np.ndarray:
    """Outputs of a float reference .tflite on real-valued inputs, shape (N, *output).

    Only its accuracy is used, never compared bit for bit, so it runs with LiteRT's default (XNNPACK)
    kernels.
    """
    load(model)  # verify the flatbuffer first, with a one-line error
    with captured_fd2():
        interp = Interpreter(model_content=model)
        interp.allocate_tensors()
    ins, outs = interp.get_input_details(), interp.get_output_details()
    check_single_io(len(ins), len(outs))
    d = ins[0]
    if np.dtype(d["dtype"]) != np.float32:
        raise GateInputError(f"float reference model takes {np.dtype(d['dtype']).name} input, not float32")
    shape = tuple(int(s) for s in d["shape"])
    if int(np.prod(shape)) != int(np.prod(inputs.shape[1:])):
        raise GateInputError(
            f"float reference model input {shape} does not match the validation inputs {inputs.shape[1:]}"
        )
    res = []
    for x in inputs:
        interp.set_tensor(d["index"], x.reshape(shape).astype(np.float32))
        interp.invoke()
        res.append(np.array(interp.get_tensor(outs[0]["index"]), copy=True))
    return np.stack(res)
