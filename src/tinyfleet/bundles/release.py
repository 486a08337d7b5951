"""Making a release: the model gate, then a signed bundle that fits its hardware profile.

`build_for_profile` is the one way a bundle for a device is built: `fleetctl bundle build`, the server's
build-from-parts and calibration-only bundles and the simulator's releases all end there, so the profile's
firmware offset and bank size hold the same everywhere. `build_release` gates the model first (a failing gate
signs nothing) and `release_contents` turns the parts and the gate's report into a manifest and components
(golden vectors become the health-check component).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace

from cryptography.hazmat.primitives.asymmetric import ec

from .builder import build_bundle
from .components import Calibration, ComponentType, Thresholds
from .format import Bundle
from .gate import GateReport, validate_model
from .gate.datasets import FloatReference, ValidationSet
from .manifest import Deployment, Manifest, ModelContract, Provenance
from .profiles import HardwareProfile

Components = dict[ComponentType, tuple[str, bytes]]  # type -> (version string, payload)


class ReleaseError(ValueError):
    """The parts cannot make a bundle for this profile; the message names why."""


class GateRefused(ReleaseError):
    """The model gate failed: nothing was signed. `report` holds every check."""

    def __init__(self, report: GateReport) -> None:
        self.report = report
        names = ", ".join(c.name for c in report.failures())
        super().__init__(f"model gate failed ({len(report.failures())} check(s): {names}); bundle not signed")


@dataclass(frozen=True)
class ReleaseParts:
    bundle_id: str
    security_counter: int
    firmware: bytes
    firmware_version: str
    model: bytes
    model_version: str
    thresholds: Thresholds
    calibration: Calibration
    feature_extractor_version: str
    deployment: Deployment
    thresholds_version: str = "1"
    calibration_version: str = "1"
    device_scope: str | None = None
    rollback_target: str | None = None
    expires_days: float | None = None
    dataset_digest: bytes | None = None
    training_run_id: str | None = None


def build_release(
    parts: ReleaseParts,
    key: ec.EllipticCurvePrivateKey,
    profile: HardwareProfile,
    *,
    val: ValidationSet,
    float_ref: FloatReference | None = None,
    now: int | None = None,
) -> tuple[bytes, GateReport]:
    """Gate the model against `profile`, then build and sign. Raises GateRefused or ReleaseError."""
    report = validate_model(parts.model, profile, parts.deployment, val=val, float_ref=float_ref)
    if not report.passed:
        raise GateRefused(report)
    manifest, components = release_contents(parts, report, profile, now=now)
    return build_for_profile(manifest, components, key, profile), report


def release_contents(
    parts: ReleaseParts, report: GateReport, profile: HardwareProfile, *, now: int | None = None
) -> tuple[Manifest, Components]:
    """The manifest and components of a release whose model passed the gate with `report`: the manifest
    carries the contract the gate measured, the golden vectors are the health-check component."""
    if report.golden is None:
        raise ReleaseError("model gate produced no golden vectors; a validation set is required")
    outputs = 1
    for d in report.output.shape:
        outputs *= d
    if len(parts.thresholds.classes) != outputs:
        raise ReleaseError(f"thresholds list {len(parts.thresholds.classes)} classes, the model outputs {outputs}")
    now = int(time.time()) if now is None else now
    manifest = Manifest(
        bundle_id=parts.bundle_id,
        hardware_class=profile.name,
        security_counter=parts.security_counter,
        created=now,
        expires=now + int(parts.expires_days * 86400) if parts.expires_days else None,
        device_scope=parts.device_scope,
        rollback_target=parts.rollback_target,
        deployment=parts.deployment,
        model=ModelContract(report.input, report.output, parts.feature_extractor_version, report.arena_bytes),
        provenance=Provenance(
            validation_report_digest=hashlib.sha256(report.to_json().encode()).digest(),
            dataset_digest=parts.dataset_digest,
            training_run_id=parts.training_run_id,
        ),
    )
    components = {
        ComponentType.FIRMWARE: (parts.firmware_version, parts.firmware),
        ComponentType.MODEL: (parts.model_version, parts.model),
        ComponentType.THRESHOLDS: (parts.thresholds_version, parts.thresholds.encode()),
        ComponentType.CALIBRATION: (parts.calibration_version, parts.calibration.encode()),
        ComponentType.HEALTH_VECTORS: (parts.model_version, report.golden.encode()),
    }
    return manifest, components


def recalibrate(
    base: Bundle,
    calibration: Calibration,
    key: ec.EllipticCurvePrivateKey,
    profile: HardwareProfile,
    *,
    bundle_id: str,
    device_scope: str | None = None,
    now: int | None = None,
) -> bytes:
    """A calibration-only bundle: the base's firmware, model, thresholds and health vectors unchanged (devices
    copy them from their active bank), the new calibration, security counter + 1. The model was gated when
    the base was built; calibration does not change what the model computes on a given input."""
    if profile.name != base.manifest.hardware_class:
        raise ReleaseError(f"profile {profile.name!r} is not the base bundle's {base.manifest.hardware_class!r}")
    comps = {c.type: (c.version, base.payload(c)) for c in base.components}
    cal_version = comps[ComponentType.CALIBRATION][0]
    comps[ComponentType.CALIBRATION] = (f"{cal_version[:26]}+recal", calibration.encode())
    manifest = replace(
        base.manifest,
        bundle_id=bundle_id,
        security_counter=base.manifest.security_counter + 1,
        created=int(time.time()) if now is None else now,
        device_scope=device_scope,
        rollback_target=base.manifest.bundle_id,
    )
    return build_for_profile(manifest, comps, key, profile)


def build_for_profile(
    manifest: Manifest, components: Components, key: ec.EllipticCurvePrivateKey, profile: HardwareProfile
) -> bytes:
    """Sign a bundle for `profile`: the firmware at the profile's `firmware_offset` (for targets that run it in
    place), and the whole bundle within one OTA bank, or ReleaseError."""
    data = build_bundle(manifest, components, key, firmware_offset=profile.firmware_offset)
    if len(data) > profile.bank_bytes:
        raise ReleaseError(
            f"bundle is {len(data)} bytes, larger than {profile.name}'s {profile.bank_bytes}-byte OTA bank"
        )
    return data
