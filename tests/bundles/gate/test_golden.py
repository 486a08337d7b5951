"""Golden vectors: stratified by class, TFLM's exact outputs, replayed bit-exactly by a fresh TFLM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tflite_micro.python.tflite_micro import runtime

from tinyfleet.bundles.components import HealthVectors
from tinyfleet.bundles.gate import GateConfig, load_validation_set, validate_model
from tinyfleet.bundles.gate.golden import stratified_indices
from tinyfleet.bundles.manifest import Deployment
from tinyfleet.bundles.profiles import load_profile

SAMPLE = Path(__file__).resolve().parents[3] / "models" / "sample"
DEPLOY = Deployment(min_battery_pct=20, max_latency_ms=50, peak_ram_bytes=32 * 1024)


def _report(k: int = 8):
    val = load_validation_set(SAMPLE / "val.npz").every(5)
    model = (SAMPLE / "vibration_int8.tflite").read_bytes()
    return (
        model,
        val,
        validate_model(model, load_profile("stm32l4"), DEPLOY, val=val, config=GateConfig(golden_vectors=k)),
    )


def test_golden_vectors_replay_bit_exactly_through_tflm() -> None:
    model, val, r = _report(12)
    hv = HealthVectors.decode(r.golden.encode())  # the component payload bundle build stores
    assert len(hv.vectors) == 12
    assert (hv.input_bytes, hv.output_bytes) == (256 * 3, 4)
    interp = runtime.Interpreter.from_bytes(model, arena_size=r.arena_bytes + 1024)
    for x, y in hv.vectors:
        interp.set_input(np.frombuffer(x, dtype=np.int8).reshape(1, 256, 3), 0)
        interp.invoke()
        assert interp.get_output(0).tobytes() == y


def test_golden_inputs_are_validation_samples_stratified_by_class() -> None:
    _, val, r = _report(8)
    rows = {val.inputs[i].tobytes(): int(val.labels[i]) for i in range(len(val))}
    labels = [rows[x] for x, _ in r.golden.vectors]
    assert sorted(labels) == [0, 0, 1, 1, 2, 2, 3, 3]


def test_stratified_indices_take_turns_and_spread() -> None:
    labels = np.array([0] * 10 + [1] * 3 + [2] * 1)
    picks = stratified_indices(labels, 7)
    assert [int(labels[i]) for i in picks].count(2) == 1
    assert [int(labels[i]) for i in picks].count(1) == 3
    assert [int(labels[i]) for i in picks].count(0) == 3
    assert [i for i in picks if labels[i] == 0] == [1, 5, 8]  # spread over class 0's ten samples
    assert stratified_indices(labels, 100) == list(range(14))
    assert stratified_indices(labels, 7) == picks  # deterministic
