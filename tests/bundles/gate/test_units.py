"""The gate's pure parts on hand-made graphs and figures: MACs, float ops, saturation rules, check limits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tflite_micro.python.tflite_micro import runtime

from tinyfleet.bundles.gate import GateConfig, load_validation_set, validate_model
from tinyfleet.bundles.gate import checks as C
from tinyfleet.bundles.gate.graph import ModelGraph, OpInfo, TensorInfo
from tinyfleet.bundles.gate.saturation import layers
from tinyfleet.bundles.gate.tflm_run import TflmFailure, TflmModel
from tinyfleet.bundles.manifest import Deployment
from tinyfleet.bundles.profiles import load_profile

MODELS = Path(__file__).resolve().parents[3] / "models"


def _t(i: int, shape: tuple[int, ...], dtype: str = "int8", scale: float = 0.1, zp: int = 0) -> TensorInfo:
    return TensorInfo(i, f"t{i}", shape, dtype, scale, zp)


def _graph(tensors: list[TensorInfo], ops: list[OpInfo], inp: int = 0, out: int | None = None) -> ModelGraph:
    return ModelGraph({t.index: t for t in tensors}, tuple(ops), inp, tensors[-1].index if out is None else out)


def test_macs_per_op_kind() -> None:
    g = _graph(
        [
            _t(0, (1, 10, 10, 3)),
            _t(1, (8, 3, 3, 3)),  # conv weights [Cout, KH, KW, Cin]
            _t(2, (1, 8, 8, 8)),
            _t(3, (1, 5, 5, 8)),  # depthwise weights [1, KH, KW, C]
            _t(4, (1, 4, 4, 8)),
            _t(5, (10, 128)),  # fully connected [units, in]
            _t(6, (1, 10)),
            _t(7, (1, 10)),
        ],
        [
            OpInfo(0, "CONV_2D", (0, 1, -1), (2,)),
            OpInfo(1, "DEPTHWISE_CONV_2D", (2, 3, -1), (4,)),
            OpInfo(2, "FULLY_CONNECTED", (4, 5, -1), (6,)),
            OpInfo(3, "SOFTMAX", (6,), (7,)),
        ],
    )
    assert [g.op_macs(op) for op in g.ops] == [8 * 8 * 8 * 27, 4 * 4 * 8 * 25, 10 * 128, 0]
    assert g.macs() == sum(g.op_macs(op) for op in g.ops)


def test_float_ops_include_float_weights_and_io() -> None:
    g = _graph(
        [_t(0, (1, 4), "float32", 0.0), _t(1, (1, 4)), _t(2, (4, 4)), _t(3, (1, 4))],
        [OpInfo(0, "QUANTIZE", (0,), (1,)), OpInfo(1, "FULLY_CONNECTED", (1, 2, -1), (3,))],
    )
    assert [op.name for op in g.float_ops()] == ["QUANTIZE"]
    r = C.full_integer(g)
    assert not r.passed and "input is float32" in r.detail and "1 float ops (QUANTIZE)" in r.detail


def test_saturation_counts_only_limits_that_are_not_zero_or_a_function_floor() -> None:
    g = _graph(
        [
            _t(0, (1, 8)),
            _t(1, (1, 8), zp=-128),  # fused ReLU: -128 is 0.0
            _t(2, (1, 8), zp=3),  # signed range: both limits count
            _t(3, (1, 8), zp=-20),  # GELU: -128 is the function's floor
            _t(4, (1, 8), zp=-20),
            _t(5, (1, 8), scale=1 / 256, zp=-128),
        ],
        [
            OpInfo(0, "CONV_2D", (0, -1, -1), (1,)),
            OpInfo(1, "ADD", (1, 1), (2,)),
            OpInfo(2, "GELU", (2,), (3,)),
            OpInfo(3, "RESHAPE", (3, -1), (4,)),
            OpInfo(4, "SOFTMAX", (4,), (5,)),
        ],
    )
    found = {lay.op_name: lay for lay in layers(g)}
    assert set(found) == {"CONV_2D", "ADD", "GELU"}  # reshape repeats, softmax has a fixed range
    acts = np.array([-128, -128, 127, 0, 5, 127, -3, 1], dtype=np.int8)
    assert found["CONV_2D"].count_at_limits(acts) == 2
    assert found["ADD"].count_at_limits(acts) == 4
    assert found["GELU"].count_at_limits(acts) == 2


def test_memory_limits_are_inclusive_and_name_the_budget() -> None:
    dep = Deployment(min_battery_pct=0, max_latency_ms=10, peak_ram_bytes=1000)
    assert C.memory(1000, 500, 1000, 500, dep).passed
    r = C.memory(1001, 501, 2000, 500, dep)
    assert not r.passed
    assert "peak RAM budget 1,000 B" in r.detail and "model flash" in r.detail and "model SRAM" not in r.detail


def test_latency_estimate_formula() -> None:
    assert C.latency_estimate_ms(80_000, 10, 80, 2.0, 1000) == pytest.approx((160_000 + 10_000) / 80_000)
    dep = Deployment(min_battery_pct=0, max_latency_ms=3, peak_ram_bytes=1)
    assert C.latency(80_000, 10, 80, 2.0, 1000, dep).passed
    assert not C.latency(80_000, 100, 80, 2.0, 1000, dep).passed


def test_agreement_limits() -> None:
    cfg = GateConfig(max_agreement_lsb=1, max_disagreement=0.25)
    a = np.array([[0, 10], [5, 5]], dtype=np.int8)
    assert C.agreement(a, a, cfg).data == {"max_abs_diff": 0, "differing_share": 0.0, "outputs": 4}
    b = a.copy()
    b[0, 0] = 1
    assert C.agreement(a, b, cfg).passed
    b[1, 1] = 6
    assert not C.agreement(a, b, cfg).passed  # 2 of 4 differ
    b = a.copy()
    b[0, 0] = 3
    assert not C.agreement(a, b, cfg).passed  # 3 LSB


def test_measured_arena_is_what_tflm_needs() -> None:
    model = (MODELS / "sample" / "vibration_int8.tflite").read_bytes()
    arena = TflmModel(model, 1 << 20).arena_bytes
    runtime.Interpreter.from_bytes(model, arena_size=arena + 16)  # enough (16 B of alignment slack)
    with pytest.raises(RuntimeError):
        runtime.Interpreter.from_bytes(model, arena_size=arena - 256)


def test_arena_above_the_host_limit_is_a_tflm_failure() -> None:
    model = (MODELS / "fixtures" / "arena_large.tflite").read_bytes()
    with pytest.raises(TflmFailure):
        TflmModel(model, 32 * 1024)


def test_a_tflm_run_past_the_timeout_fails_tflm_runs() -> None:
    model = (MODELS / "fixtures" / "arena_large.tflite").read_bytes()
    val = load_validation_set(MODELS / "sample" / "val.npz")
    dep = Deployment(min_battery_pct=0, max_latency_ms=1000, peak_ram_bytes=1 << 20)
    r = validate_model(model, load_profile("esp32s3"), dep, val=val, config=GateConfig(tflm_timeout_s=0.01))
    assert [c.name for c in r.failures()] == ["tflm_runs"]
    assert r.check("tflm_runs").detail == "TFLM did not finish within 0.01 s"


def test_any_error_inside_the_tflm_child_is_a_one_line_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    from tinyfleet.bundles.gate import tflm_run

    def broken(self, model: bytes, arena_limit_bytes: int) -> None:
        raise KeyError("opcode table\nwith a newline")

    monkeypatch.setattr(tflm_run.TflmModel, "__init__", broken)  # the forked child inherits it
    model = (MODELS / "sample" / "vibration_int8.tflite").read_bytes()
    result = tflm_run.TflmJob(model, 1 << 20, None, 60.0).result()
    assert result.failure == "TFLM failed: KeyError: 'opcode table\\nwith a newline'"
    assert result.outputs is None and result.arena_bytes == 0
