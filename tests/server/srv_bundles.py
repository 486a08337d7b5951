"""Signed test bundles built with the real bundle builder (dummy firmware and model bytes)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from tinyfleet.bundles import (
    Calibration,
    ClassThreshold,
    ComponentType,
    Deployment,
    DType,
    HealthVectors,
    Manifest,
    ModelContract,
    Provenance,
    TensorSpec,
    Thresholds,
    build_bundle,
)
from tinyfleet.bundles.components import ChannelCalibration
from tinyfleet.bundles.signing import public_pem

CAL = Calibration(100, (ChannelCalibration(0, 65536, 100 * 256, 20 * 256), ChannelCalibration(5, 65536, 0, 10 * 256)))


def write_public_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(public_pem(key.public_key()))
    return path


def make_bundle(
    key: ec.EllipticCurvePrivateKey,
    bundle_id: str,
    *,
    hw: str = "stm32l4",
    counter: int = 1,
    firmware: bytes | None = None,
    model: bytes | None = None,
    calibration: Calibration = CAL,
    contract: ModelContract | None = None,
    expires: int | None = None,
) -> bytes:
    fw = firmware if firmware is not None else hashlib.shake_256(f"fw {bundle_id}".encode()).digest(9000)
    mdl = model if model is not None else hashlib.shake_256(f"model {bundle_id}".encode()).digest(5000)
    manifest = Manifest(
        bundle_id=bundle_id,
        hardware_class=hw,
        security_counter=counter,
        created=int(time.time()) - 60,
        expires=expires,
        deployment=Deployment(20, 40, 48_000, ("site:a",)),
        model=contract
        or ModelContract(
            input=TensorSpec((1, 4), DType.INT8, 0.0625, -4),
            output=TensorSpec((1, 2), DType.INT8, 0.00390625, -128),
            feature_extractor_version="fe-1",
            arena_bytes=2048,
        ),
        provenance=Provenance(validation_report_digest=hashlib.sha256(b"report").digest()),
    )
    th = Thresholds((ClassThreshold("normal", -60, False), ClassThreshold("fault", 0, True)))
    hv = HealthVectors(4, 2, ((b"\x01\x02\x03\x04", b"\x10\x20"),))
    return build_bundle(
        manifest,
        {
            ComponentType.FIRMWARE: ("1.0.0", fw),
            ComponentType.MODEL: ("1.0.0", mdl),
            ComponentType.THRESHOLDS: ("1", th.encode()),
            ComponentType.CALIBRATION: ("1", calibration.encode()),
            ComponentType.HEALTH_VECTORS: ("1", hv.encode()),
        },
        key,
    )
