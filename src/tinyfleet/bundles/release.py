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
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any, get_type_hints

from cryptography.hazmat.primitives.asymmetric import ec

from . import features
from .builder import build_bundle
from .components import Calibration, ComponentType, Thresholds
from .format import Bundle
from .gate import GateReport, validate_model
from .gate.datasets import FloatReference, ValidationSet
from .manifest import Deployment, DType, Manifest, ModelContract, Provenance, TensorSpec
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
class ReleaseField:
    """How a release field is offered: `fleetctl bundle build`'s options and the API's build request
    (`POST /api/v1/bundles/build`) are both made from these, so a new release field is one edit (ReleaseParts).
    """

    help: str
    flag: str  # the `fleetctl bundle build` option; "" for a group, whose parts are offered one by one
    api: str | None  # key in the API's build request; "part.key": inside a nested part; None: fleetctl only
    bounds: Mapping[str, Any] = field(default_factory=dict)  # pydantic Field constraints the API applies
    default: Any = ...  # a group part's default, `...` when required (a release field's: its dataclass default)
    parts: Mapping[str, ReleaseField] = field(default_factory=dict)  # a group's fields (Deployment's)


_OWN_NAME = "<the field's name>"  # _field's default `api`: the request key is the field's own name


def _field(help: str, flag: str, api: str | None = _OWN_NAME, default: Any = MISSING, **bounds: Any) -> Any:
    return field(default=default, metadata={"release": ReleaseField(help, flag, api, bounds)})


_U32 = {"ge": 0, "le": 2**32 - 1}
_DEPLOYMENT = ReleaseField(
    "Deployment limits signed in the manifest.",
    "",
    "deployment",
    parts={
        "min_battery_pct": ReleaseField("Minimum battery % to install.", "--min-battery", "min_battery_pct",
                                        {"ge": 0, "le": 100}, default=20),
        "max_latency_ms": ReleaseField("Inference latency budget.", "--max-latency-ms", "max_latency_ms",
                                       {"ge": 1, "le": 2**32 - 1}),
        "peak_ram_bytes": ReleaseField("Model RAM budget in bytes (arena high-water).", "--peak-ram",
                                       "peak_ram_bytes", {"ge": 1, "le": 2**32 - 1}),
        "target_environments": ReleaseField("Target environment (repeatable), e.g. site:plant-a.", "--env",
                                            "target_environments", {"max_length": 16}, default=()),
    },
)  # fmt: skip


@dataclass(frozen=True)
class ReleaseParts:
    """What a release is made of: the declaration of the release fields. Each field's metadata (a
    ReleaseField, see `release_fields`) says how fleetctl and the API offer it."""

    bundle_id: str = _field("Bundle id, e.g. vibration-1.4.0-stm32l4.", "--id", min_length=1, max_length=64)
    security_counter: int = _field("Security counter; devices refuse lower ones.", "--counter", **_U32)
    firmware: bytes = _field("Firmware image.", "--firmware", "firmware.data_base64")
    firmware_version: str = _field("Firmware version string.", "--firmware-version", "firmware.version")
    model: bytes = _field("Full-INT8 .tflite model.", "--model", "model.data_base64")
    model_version: str = _field("Model version string.", "--model-version", "model.version")
    thresholds: Thresholds = _field("Thresholds JSON.", "--thresholds")
    calibration: Calibration = _field("Calibration JSON.", "--calibration")
    feature_extractor_version: str = _field(
        "Feature-extractor version the model expects.", "--fe-version", min_length=1, max_length=32
    )
    deployment: Deployment = field(metadata={"release": _DEPLOYMENT})
    thresholds_version: str = _field("Thresholds version string.", "--thresholds-version", default="1",
                                     min_length=1, max_length=31)  # fmt: skip
    calibration_version: str = _field("Calibration version string.", "--calibration-version", default="1",
                                      min_length=1, max_length=31)  # fmt: skip
    device_scope: str | None = _field("Only this device may install it.", "--device-scope", default=None,
                                      max_length=64)  # fmt: skip
    rollback_target: str | None = _field("Bundle id to roll back to.", "--rollback-target", default=None,
                                         max_length=64)  # fmt: skip
    expires_days: float | None = _field("Expire this many days from now.", "--expires-days", default=None,
                                        gt=0, le=36500)  # fmt: skip
    dataset_digest: bytes | None = _field("Training dataset file or its SHA-256 hex.", "--dataset", None, None)
    training_run_id: str | None = _field("Training run id.", "--training-run", None, None)

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> ReleaseParts:
        """From plain values, as an option parser or JSON gives them: thresholds and calibration as their JSON
        (ComponentFormatError when malformed), the deployment as a mapping of its fields, sequences as lists."""
        hints = get_type_hints(cls)
        out: dict[str, Any] = {}
        for name, value in values.items():
            kind = hints[name]
            if kind in (Thresholds, Calibration):
                value = kind.from_json(value)
            elif kind is Deployment:
                value = Deployment(**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})
            out[name] = value
        return cls(**out)


def release_fields() -> tuple[tuple[str, type, ReleaseField, Any], ...]:
    """Every release field in declaration order: (name, type, how it is offered, default; `...`: required). For
    the deployment group, `type` is Deployment and its parts' types are those of Deployment's fields."""
    hints = get_type_hints(ReleaseParts)
    out = []
    for f in fields(ReleaseParts):
        spec = f.metadata["release"]
        if spec.api == _OWN_NAME:
            spec = replace(spec, api=f.name)
        out.append((f.name, hints[f.name], spec, ... if f.default is MISSING else f.default))
    return tuple(out)


def deployment_parts() -> tuple[tuple[str, type, ReleaseField, Any], ...]:
    """The deployment group's fields, as `release_fields` gives the release fields."""
    hints = get_type_hints(Deployment)
    return tuple((name, hints[name], spec, spec.default) for name, spec in _DEPLOYMENT.parts.items())


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


# the extractors the device's library has (device/include/tinyfleet/features.h)
FEATURE_EXTRACTORS = (features.VERSION,)


def feature_input_mismatch(version: str, spec: TensorSpec) -> str | None:
    """Why a model with input `spec` cannot be fed by extractor `version` on a device, or None if it can.

    A device runs no inference for such a bundle (its extractor's output has nowhere to go), and its health
    check would not notice: the golden vectors are model inputs, not samples."""
    if version not in FEATURE_EXTRACTORS:
        return f"feature extractor {version!r} is not one devices have (they have: {', '.join(FEATURE_EXTRACTORS)})"
    leading = 1
    for d in spec.shape[:-2]:
        leading *= d
    window = (features.WINDOW, features.CHANNELS)
    quantization = (features.INPUT_SCALE, features.INPUT_ZERO_POINT)
    if (tuple(spec.shape[-2:]), leading, spec.dtype, (spec.scale, spec.zero_point)) != (window, 1, DType.INT8,
                                                                                        quantization):  # fmt: skip
        return (
            f"{version} gives the model int8 [1, {window[0]}, {window[1]}] (scale 1/128, zero point 0); the model's "
            f"input is {spec.dtype.numpy_name} {list(spec.shape)} (scale {spec.scale:g}, zero point {spec.zero_point})"
        )
    return None


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
    mismatch = feature_input_mismatch(parts.feature_extractor_version, report.input)
    if mismatch is not None:
        raise ReleaseError(mismatch)
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
