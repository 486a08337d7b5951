"""The TFLite Micro port's contract checks hold for the sample model, as TFLite Micro itself reports it.

device/ports/tflm refuses a model unless TFLM's interpreter finds exactly one input and one output tensor
whose element type, shape (batch included) and quantization (float32 scale and zero point, compared
exactly) are the manifest's. The port is tested against stand-in headers only (docs/ports.md), so this
checks the assumption those comparisons rest on against the real interpreter: the `tflite-micro` package
(TFLM's kernels and allocator, compiled for the host) reads models/sample/vibration_int8.tflite, and the
gate's own code (what `fleetctl bundle build` writes into the manifest) reads the same file.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from tflite_micro import runtime

from tinyfleet.bundles.gate import litert_run
from tinyfleet.bundles.manifest import DType

MODEL = Path(__file__).resolve().parents[2] / "models/sample/vibration_int8.tflite"
# The manifest dtype of each element type TFLM reports (the pairs tflm_inference.cpp's tflite_type maps).
MANIFEST_DTYPE_OF_NUMPY = {"int8": DType.INT8, "uint8": DType.UINT8, "int16": DType.INT16, "float32": DType.FLOAT32}


@pytest.fixture(scope="module")
def tflm() -> runtime.Interpreter:
    return runtime.Interpreter.from_bytes(MODEL.read_bytes(), arena_size=256 * 1024)


def test_tflm_finds_exactly_one_input_and_one_output(tflm) -> None:
    tflm.get_input_details(0)
    tflm.get_output_details(0)
    with pytest.raises(IndexError):
        tflm.get_input_details(1)
    with pytest.raises(IndexError):
        tflm.get_output_details(1)


@pytest.mark.parametrize("which", ["input", "output"])
def test_the_manifest_carries_what_tflm_reports_bit_for_bit(tflm, which: str) -> None:
    graph = litert_run.read_graph(litert_run.load(MODEL.read_bytes()))
    spec = graph.spec(graph.input if which == "input" else graph.output)
    details = tflm.get_input_details(0) if which == "input" else tflm.get_output_details(0)
    quant = details["quantization_parameters"]
    assert tuple(int(d) for d in details["shape"]) == spec.shape
    assert spec.shape[0] == 1  # the batch dimension is part of the contract
    assert MANIFEST_DTYPE_OF_NUMPY[np.dtype(details["dtype"]).name] == spec.dtype
    # The manifest's quantization field is <f32 scale, i32 zero point>, as the agent decodes it.
    manifest_quant = struct.pack("<fi", spec.scale, spec.zero_point)
    tflm_quant = struct.pack("<fi", quant["scales"][0], int(quant["zero_points"][0]))
    assert len(quant["scales"]) == 1
    assert manifest_quant == tflm_quant
