"""A bundle described as plain data, for `fleetctl bundle inspect` and the server's API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .components import Calibration, ComponentType, HealthVectors, Thresholds
from .errors import ComponentFormatError
from .format import Bundle


def _time(t: int | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def describe(bundle: Bundle) -> dict[str, Any]:
    m, h = bundle.manifest, bundle.header
    d, mc, p = m.deployment, m.model, m.provenance

    def tensor(t: Any) -> dict[str, Any]:
        return {"shape": list(t.shape), "dtype": t.dtype.numpy_name, "scale": t.scale, "zero_point": t.zero_point}

    out: dict[str, Any] = {
        "format_version": 1,
        "total_len": h.total_len,
        "signed_len": h.signed_len,
        "payload_offset": h.payload_offset,
        "bundle_id": m.bundle_id,
        "hardware_class": m.hardware_class,
        "device_scope": m.device_scope,
        "security_counter": m.security_counter,
        "created": _time(m.created),
        "expires": _time(m.expires),
        "rollback_target": m.rollback_target,
        "deployment": {
            "target_environments": list(d.target_environments),
            "min_battery_pct": d.min_battery_pct,
            "max_latency_ms": d.max_latency_ms,
            "peak_ram_bytes": d.peak_ram_bytes,
        },
        "model_contract": {
            "input": tensor(mc.input),
            "output": tensor(mc.output),
            "feature_extractor_version": mc.feature_extractor_version,
            "arena_bytes": mc.arena_bytes,
        },
        "provenance": {
            "dataset_digest": p.dataset_digest.hex() if p.dataset_digest else None,
            "training_run_id": p.training_run_id,
            "validation_report_digest": p.validation_report_digest.hex(),
        },
        "extra_fields": {f"0x{t:04x}": v.hex() for t, v in m.extra},
        "signature": {"algorithm": "ecdsa-p256-sha256", "key_id": bundle.signature.key_id.hex()},
        "components": [
            {
                "type": c.type.label,
                "version": c.version,
                "offset": c.offset,
                "length": c.length,
                "sha256": c.sha256.hex(),
            }
            for c in bundle.components
        ],
    }
    if bundle.data is not None:
        out["payload_summaries"] = _summaries(bundle)
    return out


def _summaries(bundle: Bundle) -> dict[str, Any]:
    s: dict[str, Any] = {}
    try:
        s["thresholds"] = Thresholds.decode(bundle.payload(ComponentType.THRESHOLDS)).to_json()
    except ComponentFormatError as e:
        s["thresholds"] = {"error": str(e)}
    try:
        s["calibration"] = Calibration.decode(bundle.payload(ComponentType.CALIBRATION)).to_json()
    except ComponentFormatError as e:
        s["calibration"] = {"error": str(e)}
    try:
        hv = HealthVectors.decode(bundle.payload(ComponentType.HEALTH_VECTORS))
        s["health_vectors"] = {"count": len(hv.vectors), "input_bytes": hv.input_bytes, "output_bytes": hv.output_bytes}
    except ComponentFormatError as e:
        s["health_vectors"] = {"error": str(e)}
    return s
