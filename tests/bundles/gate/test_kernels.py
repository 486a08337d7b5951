"""Why the gate's host TFLite pass may use LiteRT's builtin kernels: on every committed INT8 model they give
the same outputs as the reference kernels and as TFLite Micro."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from tinyfleet.bundles.gate import load_validation_set
from tinyfleet.bundles.gate.tflm_run import TflmModel

MODELS = Path(__file__).resolve().parents[3] / "models"


def _litert(model: bytes, kind: OpResolverType, inputs: np.ndarray) -> np.ndarray:
    it = Interpreter(model_content=model, experimental_op_resolver_type=kind)
    it.allocate_tensors()
    i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    outs = []
    for x in inputs:
        it.set_tensor(i, x)
        it.invoke()
        outs.append(it.get_tensor(o).copy())
    return np.stack(outs)


@pytest.mark.parametrize("name", ["sample/vibration_int8", "fixtures/saturating", "fixtures/arena_large"])
def test_builtin_reference_and_tflm_outputs_are_identical(name: str) -> None:
    model = (MODELS / f"{name}.tflite").read_bytes()
    inputs = load_validation_set(MODELS / "sample" / "val.npz").every(11).inputs.reshape(-1, 1, 256, 3)
    builtin = _litert(model, OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES, inputs)
    reference = _litert(model, OpResolverType.BUILTIN_REF, inputs)
    tflm = TflmModel(model, 1 << 20).run(inputs)
    assert np.array_equal(builtin, reference)
    assert np.array_equal(builtin, tflm)
