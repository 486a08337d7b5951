"""Signed bundles of the sample model for simulated fleets: a release per hardware class, and its bad twins.

Every bundle goes through the real model gate (golden vectors are TFLM's exact outputs on validation
samples) and, like every bundle, `tinyfleet.bundles.release.build_for_profile` (the profile's firmware offset
and bank size). The firmware is a stand-in image whose first 32 bytes are the simulation descriptor
(src/tinyfleet/simulator/descriptor.py), so "bad firmware" is a signed image that misbehaves once booted, and
"bad model" a signed bundle whose golden vectors the model on the device does not reproduce.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from tinyfleet.bundles.components import Calibration, ComponentType, HealthVectors, Thresholds
from tinyfleet.bundles.format import bundle_digest
from tinyfleet.bundles.gate import GateReport, load_validation_set, validate_model
from tinyfleet.bundles.manifest import Deployment
from tinyfleet.bundles.profiles import load_profile
from tinyfleet.bundles.release import ReleaseParts, build_for_profile, release_contents
from tinyfleet.simulator.descriptor import Descriptor, firmware_image

SAMPLE = Path(__file__).resolve().parents[3] / "models" / "sample"
HARDWARE_CLASSES = ("esp32s3", "stm32l4")
DEPLOYMENT = Deployment(min_battery_pct=20, max_latency_ms=50, peak_ram_bytes=65536)
CREATED = 1_780_000_000  # fixed, so the same inputs give the same bundle bytes


@dataclass(frozen=True)
class Release:
    """What a bundle contains; `build` turns it into signed bytes for one hardware class."""

    bundle_id: str
    counter: int
    firmware_version: str = "2.3.1"
    descriptor: Descriptor = Descriptor()
    calibration: Calibration | None = None  # None: the sample calibration
    calibration_version: str = "1"
    corrupt_golden: bool = False  # the golden vectors' outputs do not match the model (a bad model bundle)
    device_scope: str | None = None


@lru_cache(maxsize=4)
def gate_report(hw: str) -> GateReport:
    model = (SAMPLE / "vibration_int8.tflite").read_bytes()
    report = validate_model(model, load_profile(hw), DEPLOYMENT, val=load_validation_set(SAMPLE / "val.npz"))
    if not report.passed or report.golden is None:
        raise RuntimeError(f"the sample model fails the model gate for {hw}: {[c.name for c in report.failures()]}")
    return report


def estimated_latency_us(hw: str) -> int:
    """The gate's latency estimate for the sample model on this hardware profile (what a simulated MCU takes)."""
    return round(gate_report(hw).check("latency").data["estimated_latency_ms"] * 1000)


def sample_calibration() -> Calibration:
    return Calibration.from_json(json.loads((SAMPLE / "calibration.json").read_text()))


def build(release: Release, hw: str, key: ec.EllipticCurvePrivateKey) -> bytes:
    """The release's bundle for `hw`, through the release path every bundle takes (build_for_profile)."""
    profile = load_profile(hw)
    report = gate_report(hw)
    provenance = json.loads((SAMPLE / "provenance.json").read_text())
    parts = ReleaseParts(
        bundle_id=bundle_id(release, hw),
        security_counter=release.counter,
        firmware=firmware_image(release.firmware_version, release.descriptor),
        firmware_version=release.firmware_version,
        model=(SAMPLE / "vibration_int8.tflite").read_bytes(),
        model_version="1.0.0",
        thresholds=Thresholds.from_json(json.loads((SAMPLE / "thresholds.json").read_text())),
        calibration=release.calibration or sample_calibration(),
        calibration_version=release.calibration_version,
        feature_extractor_version=provenance["feature_extractor_version"],
        deployment=DEPLOYMENT,
        device_scope=release.device_scope,
        dataset_digest=bytes.fromhex(provenance["dataset_digest"]),
        training_run_id=provenance["training_run_id"],
    )
    manifest, components = release_contents(parts, report, profile, now=CREATED)
    if release.corrupt_golden:  # flip one output byte of every vector: the device's TFLM will disagree
        golden = HealthVectors.decode(components[ComponentType.HEALTH_VECTORS][1])
        golden = HealthVectors(golden.input_bytes, golden.output_bytes,
                               tuple((i, bytes([o[0] ^ 0x01]) + o[1:]) for i, o in golden.vectors))  # fmt: skip
        components[ComponentType.HEALTH_VECTORS] = (parts.model_version, golden.encode())
    return build_for_profile(manifest, components, key, profile)


def bundle_id(release: Release, hw: str) -> str:
    """Releases are per hardware class: `vibration-1.0.0` for stm32l4 is `vibration-1.0.0-stm32l4`."""
    return f"{release.bundle_id}-{hw}"


def digest(bundle: bytes) -> bytes:
    return bundle_digest(bundle)


def with_calibration(release: Release, cal: Calibration, bundle_id: str, counter: int, version: str) -> Release:
    """A calibration-only successor: same firmware and model, new calibration."""
    return replace(release, bundle_id=bundle_id, counter=counter, calibration=cal, calibration_version=version)

