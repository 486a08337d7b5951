"""TFLite Micro on the host, one interpreter per distinct model shared by every simulated device.

Devices run whichever model their booted bank holds; the pool keys interpreters by the model's SHA-256, so a
fleet of thousands holds one interpreter per model version, not one per device. The agent core is
single-threaded and so is the simulator's loop: sharing an interpreter between devices is safe.
"""

from __future__ import annotations

import hashlib

import numpy as np
from tflite_micro import runtime

from tinyfleet.bundles.gate.tflm_run import arena_used

ARENA_SIZE = 64 * 1024


class ModelRunner:
    def __init__(self, model: bytes) -> None:
        self.interp = runtime.Interpreter.from_bytes(model, arena_size=ARENA_SIZE)
        d = self.interp.get_input_details(0)
        self.in_dtype, self.in_shape = d["dtype"], tuple(d["shape"])
        self.arena_bytes = arena_used(self.interp)
        self.invocations = 0

    def run(self, data: bytes) -> bytes:
        x = np.frombuffer(data, dtype=self.in_dtype).reshape(self.in_shape)
        self.interp.set_input(x, 0)
        self.interp.invoke()
        self.invocations += 1
        return np.ascontiguousarray(self.interp.get_output(0)).tobytes()


class InterpreterPool:
    def __init__(self) -> None:
        self._runners: dict[bytes, ModelRunner] = {}

    def get(self, model: bytes) -> ModelRunner:
        key = hashlib.sha256(model).digest()
        runner = self._runners.get(key)
        if runner is None:
            runner = self._runners[key] = ModelRunner(model)
        return runner

    def __len__(self) -> int:
        return len(self._runners)

    @property
    def invocations(self) -> int:
        return sum(r.invocations for r in self._runners.values())
