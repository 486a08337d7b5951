"""Run a model through TFLite Micro's kernels on the host (`tflite-micro`), and measure its arena.

The arena figure is the one TFLM's recording allocator reports after an invoke ("Arena allocation total"),
i.e. the bytes the interpreter actually took, not an estimate from tensor sizes. It is measured on the
64-bit host: a 32-bit device's bookkeeping structs are smaller, so it is an upper bound there.
"""

from __future__ import annotations

import re

import numpy as np
from tflite_micro.python.tflite_micro import runtime

from .stderr_capture import captured_fd2

_MISSING_OP = re.compile(r"Didn't find op for (builtin|custom) opcode '([^']+)'")
_ARENA_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")


class TflmFailure(Exception):
    """TFLM refused the model (an op it lacks, a tensor it cannot allocate) or failed to invoke it."""


def _explain(native_log: str, fallback: str) -> str:
    m = _MISSING_OP.search(native_log)
    if m:
        return f"unsupported {m.group(1)} op {m.group(2)}"
    lines = [ln.strip() for ln in native_log.splitlines() if ln.strip()]
    return f"{fallback}: {lines[0]}" if lines else fallback


class TflmModel:
    """One TFLM interpreter over the model, with the arena measured on construction."""

    def __init__(self, model: bytes, arena_limit_bytes: int) -> None:
        with captured_fd2() as log:
            try:
                self._interp = runtime.Interpreter.from_bytes(model, arena_size=arena_limit_bytes)
            except (RuntimeError, ValueError) as e:
                failure: Exception | None = e
            else:
                failure = None
        if failure is not None:
            raise TflmFailure(_explain(log.text, f"TFLM could not load the model ({failure})"))
        details = self._interp.get_input_details(0)
        self.input_shape = tuple(int(d) for d in details["shape"])
        self.input_dtype = np.dtype(details["dtype"])
        self.invoke(np.zeros(self.input_shape, self.input_dtype))
        with captured_fd2() as log:
            self._interp.print_allocations()
        m = _ARENA_TOTAL.search(log.text)
        if m is None:
            raise TflmFailure("TFLM did not report its arena allocation")
        self.arena_bytes = int(m.group(1))

    def invoke(self, x: np.ndarray) -> np.ndarray:
        with captured_fd2() as log:
            try:
                self._interp.set_input(x.reshape(self.input_shape), 0)
                self._interp.invoke()
                out = self._interp.get_output(0)
            except (RuntimeError, ValueError) as e:
                failure: Exception | None = e
            else:
                failure = None
        if failure is not None:
            raise TflmFailure(_explain(log.text, f"TFLM invoke failed ({failure})"))
        return np.array(out, copy=True)

    def run(self, inputs: np.ndarray) -> np.ndarray:
        """Outputs for a batch of inputs, invoked one at a time as the device does: shape (N, *output)."""
        interp = self._interp
        shape = self.input_shape
        outs = []
        with captured_fd2() as log:
            try:
                for x in inputs:
                    interp.set_input(x.reshape(shape), 0)
                    interp.invoke()
                    outs.append(np.array(interp.get_output(0), copy=True))
            except (RuntimeError, ValueError) as e:
                failure: Exception | None = e
            else:
                failure = None
        if failure is not None:
            raise TflmFailure(_explain(log.text, f"TFLM invoke failed ({failure})"))
        return np.stack(outs) if outs else np.zeros((0,), dtype=np.int8)
