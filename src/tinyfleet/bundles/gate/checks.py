"""Each gate check as a pure function: measured figures in, a `CheckResult` out.

Names, in report order: full_integer, tflm_runs, memory, latency, accuracy, float_drop, saturation,
agreement (docs/model-gate.md, "Checks").
"""

from __future__ import annotations

import numpy as np

from ..manifest import Deployment
from .config import GateConfig
from .graph import ModelGraph
from .report import CheckResult
from .saturation import Layer

FULL_INTEGER = "full_integer"
TFLM_RUNS = "tflm_runs"
MEMORY = "memory"
LATENCY = "latency"
ACCURACY = "accuracy"
FLOAT_DROP = "float_drop"
SATURATION = "saturation"
AGREEMENT = "agreement"
ORDER = (FULL_INTEGER, TFLM_RUNS, MEMORY, LATENCY, ACCURACY, FLOAT_DROP, SATURATION, AGREEMENT)


def full_integer(graph: ModelGraph) -> CheckResult:
    problems = []
    for role, idx in (("input", graph.input), ("output", graph.output)):
        t = graph.tensors[idx]
        if t.dtype != "int8":
            problems.append(f"{role} is {t.dtype}")
        elif t.scale <= 0:
            problems.append(f"{role} int8 without quantization parameters")
    float_ops = graph.float_ops()
    if float_ops:
        names = sorted({op.name for op in float_ops})
        problems.append(f"{len(float_ops)} float ops ({', '.join(names)})")
    t_in, t_out = graph.tensors[graph.input], graph.tensors[graph.output]
    figure = f"input {t_in.dtype}, output {t_out.dtype}, {len(float_ops)} float ops of {len(graph.ops)}"
    data = {"input_dtype": t_in.dtype, "output_dtype": t_out.dtype, "float_ops": len(float_ops), "ops": len(graph.ops)}
    return CheckResult(FULL_INTEGER, not problems, figure, "; ".join(problems), data=data)


def tflm_runs(failure: str | None, n_ops: int) -> CheckResult:
    if failure is not None:
        return CheckResult(TFLM_RUNS, False, "does not run", failure)
    return CheckResult(TFLM_RUNS, True, f"loaded and invoked, {n_ops} ops", data={"ops": n_ops})


def memory(
    arena_bytes: int, model_bytes: int, profile_sram: int, profile_flash: int, deployment: Deployment
) -> CheckResult:
    ram_limit = min(profile_sram, deployment.peak_ram_bytes)
    problems = []
    if arena_bytes > profile_sram:
        problems.append(f"arena {arena_bytes:,} B exceeds the profile's {profile_sram:,} B of model SRAM")
    if arena_bytes > deployment.peak_ram_bytes:
        problems.append(f"arena {arena_bytes:,} B exceeds the bundle's peak RAM budget {deployment.peak_ram_bytes:,} B")
    if model_bytes > profile_flash:
        problems.append(f"model {model_bytes:,} B exceeds the profile's {profile_flash:,} B of model flash")
    figure = f"arena {arena_bytes:,} / {ram_limit:,} B, flash {model_bytes:,} / {profile_flash:,} B"
    data = {
        "arena_bytes": arena_bytes,
        "ram_limit_bytes": ram_limit,
        "model_bytes": model_bytes,
        "flash_limit_bytes": profile_flash,
    }
    return CheckResult(MEMORY, not problems, figure, "; ".join(problems), data=data)


def latency_estimate_ms(macs: int, n_ops: int, clock_mhz: int, cycles_per_mac: float, op_overhead_cycles: int) -> float:
    return (macs * cycles_per_mac + n_ops * op_overhead_cycles) / (clock_mhz * 1000.0)


def latency(
    macs: int, n_ops: int, clock_mhz: int, cycles_per_mac: float, op_overhead_cycles: int, deployment: Deployment
) -> CheckResult:
    est = latency_estimate_ms(macs, n_ops, clock_mhz, cycles_per_mac, op_overhead_cycles)
    ok = est <= deployment.max_latency_ms
    figure = f"{macs:,} MACs, estimated {est:.2f} ms at {clock_mhz} MHz / {deployment.max_latency_ms} ms"
    detail = (
        "" if ok else f"estimated latency {est:.2f} ms exceeds the bundle's max_latency_ms {deployment.max_latency_ms}"
    )
    data = {
        "macs": macs,
        "estimated_latency_ms": est,
        "max_latency_ms": deployment.max_latency_ms,
        "clock_mhz": clock_mhz,
        "is_estimate": True,
    }
    return CheckResult(LATENCY, ok, figure, detail, data=data)


def accuracy(acc: float, n: int, config: GateConfig) -> CheckResult:
    ok = acc >= config.min_accuracy
    figure = f"{acc:.4f} on {n} samples (TFLM) / min {config.min_accuracy:.4f}"
    detail = "" if ok else f"TFLM accuracy {acc:.4f} is below the minimum {config.min_accuracy:.4f}"
    return CheckResult(ACCURACY, ok, figure, detail, data={"accuracy": acc, "samples": n, "min": config.min_accuracy})


def float_drop(float_acc: float, acc: float, config: GateConfig) -> CheckResult:
    drop = float_acc - acc
    ok = drop <= config.max_accuracy_drop + 1e-12
    figure = f"float {float_acc:.4f} -> int8 {acc:.4f}, drop {drop:+.4f} / max {config.max_accuracy_drop:.4f}"
    detail = (
        "" if ok else f"accuracy drop {drop:.4f} against the float reference exceeds {config.max_accuracy_drop:.4f}"
    )
    data = {"float_accuracy": float_acc, "accuracy": acc, "drop": drop, "max": config.max_accuracy_drop}
    return CheckResult(FLOAT_DROP, ok, figure, detail, data=data)


def saturation(
    layers: list[Layer], at_limit: dict[int, int], totals: dict[int, int], config: GateConfig
) -> CheckResult:
    per_layer = []
    for layer in layers:
        share = at_limit[layer.tensor] / totals[layer.tensor] if totals[layer.tensor] else 0.0
        per_layer.append(
            {
                "layer": layer.label,
                "tensor": layer.tensor_name,
                "share": share,
                "flagged": share > config.max_saturation,
            }
        )
    flagged = [p for p in per_layer if p["flagged"]]
    worst = max(per_layer, key=lambda p: p["share"]) if per_layer else None
    figure = (
        f"worst {worst['layer']} {worst['share']:.4f} / max {config.max_saturation:.4f}, {len(per_layer)} layers"
        if worst
        else "no int8 layers"
    )
    detail = ", ".join(f"{p['layer']} {p['share']:.4f}" for p in flagged)
    detail = f"saturating layers: {detail}" if flagged else ""
    return CheckResult(
        SATURATION, not flagged, figure, detail, data={"layers": per_layer, "max": config.max_saturation}
    )


def agreement(reference: np.ndarray, tflm: np.ndarray, config: GateConfig) -> CheckResult:
    diff = np.abs(reference.astype(np.int64) - tflm.astype(np.int64))
    max_diff = int(diff.max()) if diff.size else 0
    share = float(np.count_nonzero(diff)) / diff.size if diff.size else 0.0
    ok = max_diff <= config.max_agreement_lsb and share <= config.max_disagreement
    figure = f"max |TFLite - TFLM| {max_diff} LSB, {share:.4f} of outputs differ"
    detail = (
        ""
        if ok
        else (
            f"TFLite and TFLM disagree beyond {config.max_agreement_lsb} LSB / {config.max_disagreement:.4f} of outputs"
        )
    )
    data = {"max_abs_diff": max_diff, "differing_share": share, "outputs": int(diff.size)}
    return CheckResult(AGREEMENT, ok, figure, detail, data=data)
