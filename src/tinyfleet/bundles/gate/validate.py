"""`validate_model`: run every check on one model and assemble the report (the gate's I/O shell).

Order matters only for what can be evaluated: a model that is not full-integer cannot be fed the int8
validation set, and a model TFLM cannot load has no arena, accuracy or agreement figure; those checks are
reported as skipped with the reason, so each failing model fails exactly the checks it breaks.
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..manifest import Deployment, DType, TensorSpec
from . import checks as C
from . import litert_run
from .config import GateConfig
from .datasets import FloatReference, ValidationSet
from .errors import GateInputError
from .golden import golden_vectors, stratified_indices
from .report import CheckResult, GateReport, skipped
from .saturation import layers as saturation_layers
from .tflm_run import TflmJob

if TYPE_CHECKING:
    from ..profiles import HardwareProfile


def _check_val(val: ValidationSet, spec: TensorSpec, n_out: int, full_integer: bool) -> np.ndarray:
    """The validation inputs reshaped to (N, *model input shape); GateInputError when they cannot be."""
    per_sample = tuple(val.inputs.shape[1:])
    shape = tuple(spec.shape)
    accepted = {shape, shape[1:]} if shape and shape[0] == 1 else {shape}
    if per_sample not in accepted:
        raise GateInputError(f"validation set inputs have shape {per_sample} per sample, the model expects {shape}")
    if full_integer and val.inputs.dtype != np.dtype(spec.dtype.numpy_name):
        raise GateInputError(f"validation set inputs are {val.inputs.dtype}, the model expects {spec.dtype.numpy_name}")
    if int(val.labels.max()) >= max(n_out, 2):
        raise GateInputError(
            f"validation label {int(val.labels.max())} is out of range for a model with {n_out} outputs"
        )
    return val.inputs.reshape((len(val), *shape))


def _predict(outputs: np.ndarray, spec: TensorSpec) -> np.ndarray:
    flat = outputs.reshape(outputs.shape[0], -1)
    if flat.shape[1] >= 2:
        return np.argmax(flat, axis=1)
    real = (flat[:, 0].astype(np.float64) - spec.zero_point) * (spec.scale or 1.0)
    return (real > 0.5).astype(np.int64)


def _float_outputs(ref: FloatReference, inputs: np.ndarray, spec: TensorSpec, n: int, n_out: int) -> np.ndarray:
    if ref.model is not None:
        real = (inputs.astype(np.float32) - np.float32(spec.zero_point)) * np.float32(spec.scale)
        out = litert_run.run_float_model(ref.model, real)
    else:
        assert ref.outputs is not None
        out = ref.outputs
    if out.shape[0] != n:
        raise GateInputError(f"float reference has {out.shape[0]} rows, the validation set {n} samples")
    if math.prod(out.shape[1:]) != n_out:
        raise GateInputError(f"float reference rows have {math.prod(out.shape[1:])} values, the model {n_out} outputs")
    return out


def _strata(val: ValidationSet, correct: np.ndarray, float_correct: np.ndarray | None) -> dict[str, dict[str, Any]]:
    """Accuracy per class, per environment tag value and per combination of tag values (and the float
    reference's accuracy, when given)."""
    groups: dict[str, np.ndarray] = {}
    for label in np.unique(val.labels):
        name = val.classes[label] if label < len(val.classes) else str(int(label))
        groups[f"class={name}"] = val.labels == label
    for tag, values in val.tags.items():
        for v in np.unique(values):
            groups[f"{tag}={v}"] = values == v
    if len(val.tags) >= 2:  # the full strata: every combination of tag values present
        names = sorted(val.tags)
        keys = np.array(["&".join(f"{t}={val.tags[t][i]}" for t in names) for i in range(len(val))])
        for k in np.unique(keys):
            groups[str(k)] = keys == k
    out: dict[str, dict[str, Any]] = {}
    for k, m in sorted(groups.items()):
        out[k] = {"samples": int(m.sum()), "accuracy": float(correct[m].mean())}
        if float_correct is not None:
            out[k]["float_accuracy"] = float(float_correct[m].mean())
    return out


def _context(
    model: bytes,
    profile: HardwareProfile,
    deployment: Deployment,
    config: GateConfig,
    val: ValidationSet | None,
    float_ref: FloatReference | None,
) -> dict[str, Any]:
    ref: dict[str, Any] | None = None
    if float_ref is not None and float_ref.model is not None:
        ref = {"kind": "tflite", "sha256": hashlib.sha256(float_ref.model).hexdigest()}
    elif float_ref is not None and float_ref.outputs is not None:
        ref = {
            "kind": "outputs",
            "sha256": hashlib.sha256(np.ascontiguousarray(float_ref.outputs).tobytes()).hexdigest(),
        }
    return {
        "model": {"sha256": hashlib.sha256(model).hexdigest(), "bytes": len(model)},
        "profile": profile.to_json(),
        "deployment": {
            "min_battery_pct": deployment.min_battery_pct,
            "max_latency_ms": deployment.max_latency_ms,
            "peak_ram_bytes": deployment.peak_ram_bytes,
            "target_environments": list(deployment.target_environments),
        },
        "config": config.to_json(),
        "validation_set": None if val is None else {"samples": len(val), "sha256": val.digest()},
        "float_reference": ref,
    }


def validate_model(
    model: bytes,
    profile: HardwareProfile,
    deployment: Deployment,
    *,
    val: ValidationSet | None = None,
    float_ref: FloatReference | None = None,
    config: GateConfig | None = None,
) -> GateReport:
    config = config or GateConfig()
    interp = litert_run.load(model)
    graph = litert_run.read_graph(interp)
    in_spec, out_spec = graph.spec(graph.input), graph.spec(graph.output)
    n_out = math.prod(out_spec.shape)
    results: dict[str, CheckResult] = {}

    results[C.FULL_INTEGER] = C.full_integer(graph)
    int8 = results[C.FULL_INTEGER].passed
    golden = None
    strata: dict[str, dict[str, Any]] = {}
    data_checks = (C.ACCURACY, C.FLOAT_DROP, C.SATURATION, C.AGREEMENT)
    inputs = _check_val(val, in_spec, n_out, int8) if val is not None else None
    run_data = inputs is not None and int8
    # TFLM runs in a child process while this one runs the host TFLite interpreter and the float model.
    job = TflmJob(model, config.arena_limit_bytes, inputs if run_data else None, config.tflm_timeout_s)
    try:
        layers = saturation_layers(graph)
        ref = litert_run.run_reference(interp, graph, inputs, layers) if run_data else None
        f_out = None
        if run_data and float_ref is not None:
            f_out = _float_outputs(float_ref, inputs, in_spec, len(inputs), n_out)
        tflm = job.result()
    finally:
        job.close()

    results[C.TFLM_RUNS] = C.tflm_runs(tflm.failure, len(graph.ops))
    not_in_tflm = "not evaluated: the model does not run in TFLite Micro"
    if tflm.failure is None:
        results[C.MEMORY] = C.memory(
            tflm.arena_bytes, len(model), profile.model_sram_bytes, profile.model_flash_bytes, deployment
        )
    else:
        results[C.MEMORY] = skipped(C.MEMORY, not_in_tflm)
    results[C.LATENCY] = C.latency(
        graph.macs(), len(graph.ops), profile.clock_mhz, profile.cycles_per_mac, profile.op_overhead_cycles, deployment
    )

    if val is None or inputs is None:
        for name in data_checks:
            results[name] = skipped(name, "not evaluated: no validation set given")
    elif ref is None:
        for name in data_checks:
            results[name] = skipped(name, "not evaluated: the model is not full-integer")
    else:
        results[C.SATURATION] = C.saturation(layers, ref.at_limit, ref.totals, config)
        if tflm.outputs is None:
            for name in (C.ACCURACY, C.FLOAT_DROP, C.AGREEMENT):
                results[name] = skipped(name, not_in_tflm)
        else:
            outputs = tflm.outputs
            correct = _predict(outputs, out_spec) == val.labels
            acc = float(correct.mean())
            results[C.ACCURACY] = C.accuracy(acc, len(val), config)
            float_correct = None
            if f_out is None:
                results[C.FLOAT_DROP] = skipped(C.FLOAT_DROP, "not evaluated: no float reference given")
            else:
                float_spec = TensorSpec(out_spec.shape, DType.FLOAT32, 0.0, 0)
                float_correct = _predict(f_out, float_spec) == val.labels
                results[C.FLOAT_DROP] = C.float_drop(float(float_correct.mean()), acc, config)
            results[C.AGREEMENT] = C.agreement(ref.outputs, outputs, config)
            strata = _strata(val, correct, float_correct)
            picks = stratified_indices(val.labels, config.golden_vectors)
            golden = golden_vectors(inputs, outputs, picks, in_spec.nbytes, out_spec.nbytes)

    return GateReport(
        checks=[results[name] for name in C.ORDER],
        input=in_spec,
        output=out_spec,
        arena_bytes=tflm.arena_bytes,
        macs=graph.macs(),
        golden=golden,
        context=_context(model, profile, deployment, config, val, float_ref),
        strata=strata,
    )
