"""Build and sign a bundle on the server from its parts, the way `fleetctl bundle build` does on a laptop:
model gate (with the validation set, which yields the golden health vectors), manifest, signature with the
server's signing key. The result then goes through the same upload path as any bundle."""

from __future__ import annotations

import hashlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from tinyfleet.bundles import (
    BundleError,
    Calibration,
    ComponentType,
    Deployment,
    Manifest,
    ModelContract,
    Provenance,
    Thresholds,
    build_bundle,
)
from tinyfleet.bundles.errors import ComponentFormatError
from tinyfleet.server.services.errors import Conflict, Unprocessable


@dataclass(frozen=True)
class Parts:
    bundle_id: str
    hardware_class: str
    security_counter: int
    firmware: bytes
    firmware_version: str
    model: bytes
    model_version: str
    thresholds: Any  # JSON, as `fleetctl bundle build --thresholds`
    calibration: Any  # JSON, as `--calibration`
    validation_set: bytes  # .npz with `inputs` and `labels`
    feature_extractor_version: str
    deployment: Deployment
    thresholds_version: str = "1"
    calibration_version: str = "1"
    device_scope: str | None = None
    rollback_target: str | None = None
    expires_days: float | None = None


def build(parts: Parts, key: ec.EllipticCurvePrivateKey | None) -> tuple[bytes, dict[str, Any]]:
    """Signed bundle bytes and the gate's report, or Unprocessable naming the problem."""
    from tinyfleet.bundles.gate import GateInputError, load_validation_set, validate_model
    from tinyfleet.bundles.profiles import load_profile

    if key is None:
        raise Conflict("this server holds no signing key (set TINYFLEET_SIGNING_KEY_FILE); build with fleetctl")
    try:
        th = Thresholds.from_json(parts.thresholds)
        cal = Calibration.from_json(parts.calibration)
        profile = load_profile(parts.hardware_class)
        with tempfile.TemporaryDirectory() as tmp:
            npz = Path(tmp) / "val.npz"
            npz.write_bytes(parts.validation_set)
            val = load_validation_set(npz)
        report = validate_model(parts.model, profile, parts.deployment, val=val)
    except (ComponentFormatError, GateInputError) as exc:
        raise Unprocessable(str(exc)) from exc
    if not report.passed:
        raise Unprocessable(f"model gate failed: {', '.join(c.name for c in report.failures())}")
    if report.golden is None:
        raise Unprocessable("model gate produced no golden vectors from the validation set")
    outputs = 1
    for d in report.output.shape:
        outputs *= d
    if len(th.classes) != outputs:
        raise Unprocessable(f"thresholds list {len(th.classes)} classes, the model outputs {outputs}")
    report_json = report.to_json()
    now = int(time.time())
    try:
        manifest = Manifest(
            bundle_id=parts.bundle_id,
            hardware_class=parts.hardware_class,
            security_counter=parts.security_counter,
            created=now,
            expires=now + int(parts.expires_days * 86400) if parts.expires_days else None,
            device_scope=parts.device_scope,
            rollback_target=parts.rollback_target,
            deployment=parts.deployment,
            model=ModelContract(report.input, report.output, parts.feature_extractor_version, report.arena_bytes),
            provenance=Provenance(validation_report_digest=hashlib.sha256(report_json.encode()).digest()),
        )
        data = build_bundle(
            manifest,
            {
                ComponentType.FIRMWARE: (parts.firmware_version, parts.firmware),
                ComponentType.MODEL: (parts.model_version, parts.model),
                ComponentType.THRESHOLDS: (parts.thresholds_version, th.encode()),
                ComponentType.CALIBRATION: (parts.calibration_version, cal.encode()),
                ComponentType.HEALTH_VECTORS: (parts.model_version, report.golden.encode()),
            },
            key,
        )
    except (BundleError, ValueError) as exc:
        raise Unprocessable(f"cannot build the bundle: {exc}") from exc
    return data, {"passed": True, "checks": {c.name: c.status for c in report.checks},
                  "arena_bytes": report.arena_bytes}  # fmt: skip


def calibration_only(
    base_data: bytes,
    calibration: Any,
    *,
    bundle_id: str,
    device_scope: str | None,
    key: ec.EllipticCurvePrivateKey | None,
) -> bytes:
    """The base bundle with a new calibration: same firmware, model, thresholds and health vectors (so devices
    copy them from their active bank instead of downloading), security counter + 1, signed by the server."""
    from dataclasses import replace

    from tinyfleet.bundles import parse_bundle

    if key is None:
        raise Conflict("this server holds no signing key (set TINYFLEET_SIGNING_KEY_FILE); build with fleetctl")
    base = parse_bundle(base_data)
    try:
        cal = Calibration.from_json(calibration)
    except ComponentFormatError as exc:
        raise Unprocessable(str(exc)) from exc
    m = base.manifest
    comps = {c.type: (c.version, base.payload(c)) for c in base.components}
    cal_version = comps[ComponentType.CALIBRATION][0]
    comps[ComponentType.CALIBRATION] = (f"{cal_version[:23]}+recal", cal.encode())
    manifest = replace(
        m,
        bundle_id=bundle_id,
        security_counter=m.security_counter + 1,
        created=int(time.time()),
        device_scope=device_scope,
        rollback_target=m.bundle_id,
    )
    try:
        return build_bundle(manifest, comps, key)
    except (BundleError, ValueError) as exc:
        raise Unprocessable(f"cannot build the bundle: {exc}") from exc
