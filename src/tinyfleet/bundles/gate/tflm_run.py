"""Run a model through TFLite Micro's kernels on the host (`tflite-micro`), and measure its arena.

The arena figure is the one TFLM's recording allocator reports after an invoke ("Arena allocation total"),
i.e. the bytes the interpreter actually took, not an estimate from tensor sizes. It is measured on the
64-bit host: a 32-bit device's bookkeeping structs are smaller, so it is an upper bound there.
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import re
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

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


def arena_used(interp: runtime.Interpreter) -> int:
    """Arena bytes TFLM allocated; it reports them only on file descriptor 2 (print_allocations)."""
    with captured_fd2() as log:
        interp.print_allocations()
    m = _ARENA_TOTAL.search(log.text)
    if m is None:
        raise TflmFailure("TFLM did not report its arena allocation")
    return int(m.group(1))


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
        self.arena_bytes = arena_used(self._interp)

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


@dataclass(frozen=True)
class TflmResult:
    arena_bytes: int  # 0 when it failed
    outputs: np.ndarray | None  # (N, *output) for the inputs given, when it ran
    failure: str | None  # why TFLM refused, failed or crashed


def _child(conn: Connection, model: bytes, arena_limit_bytes: int, inputs: np.ndarray | None) -> None:
    faulthandler.disable()  # a crash here is a verdict, reported by the parent; no traceback dump
    try:
        m = TflmModel(model, arena_limit_bytes)
        outs = m.run(inputs) if inputs is not None else None
        conn.send(TflmResult(m.arena_bytes, outs, None))
    except TflmFailure as e:
        conn.send(TflmResult(0, None, str(e)))
    except Exception as e:  # whatever else the wrapper raises is this model's verdict too, in one line
        conn.send(TflmResult(0, None, " ".join(f"TFLM failed: {e.__class__.__name__}: {e}".split())[:200]))
    conn.close()


class TflmJob:
    """Load, measure and run the model in TFLM inside a forked child process, started on construction.

    TFLM trusts its model: a flatbuffer that verifies can still carry parameters its kernels divide by
    (a corrupted stride, a zero dimension), and the process dies of SIGFPE or SIGSEGV. In a child, that is
    the `tflm_runs` verdict (the device would crash the same way) instead of the end of the caller. The
    caller does its own work (the host TFLite pass) while the child runs, then asks for `result()`.
    """

    def __init__(self, model: bytes, arena_limit_bytes: int, inputs: np.ndarray | None, timeout_s: float) -> None:
        ctx = multiprocessing.get_context("fork")
        self._timeout_s = timeout_s
        self._deadline = time.monotonic() + timeout_s
        self._receiver, sender = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_child, args=(sender, model, arena_limit_bytes, inputs), daemon=True)
        self._proc.start()
        sender.close()

    def result(self) -> TflmResult:
        result: TflmResult | None = None
        finished = False
        try:
            # True once the child sent its result or died; the timeout counts from the child's start.
            finished = self._receiver.poll(max(0.0, self._deadline - time.monotonic()))
            if finished:
                result = self._receiver.recv()
        except EOFError:
            result = None
        if not finished:
            self.close()
            return TflmResult(0, None, f"TFLM did not finish within {self._timeout_s:g} s")
        self._proc.join()
        self._receiver.close()
        if result is None:
            code = self._proc.exitcode if self._proc.exitcode is not None else 0
            what = signal.Signals(-code).name if code < 0 else f"exit code {code}"
            return TflmResult(0, None, f"TFLM crashed ({what}) on this model")
        return result

    def close(self) -> None:
        """Stop the child if it still runs (the caller gave up, or raised)."""
        if self._proc.is_alive():
            self._proc.kill()
        self._proc.join()
        self._receiver.close()
