"""Calibration proposals: new offsets and gains that map a drifting device's newest telemetry window back onto
its own reference window (its first on the bundle) or onto the bundle's validation baseline, for a
calibration-only bundle (same firmware and model). The arithmetic is server/drift.py's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric import ec
from sqlmodel import Session

from tinyfleet.bundles import TrustedKeys
from tinyfleet.server.db.models import Bundle, DriftScore
from tinyfleet.server.drift import Baseline, baseline_targets, propose_calibration
from tinyfleet.server.services import bundle_builder, bundles
from tinyfleet.server.services.errors import Conflict, NotFound

Target = Literal["reference", "baseline"]


@dataclass(frozen=True)
class Proposal:
    device_id: str
    base_bundle: str
    security_counter: int  # the base bundle's + 1
    drift_score: float
    against: Target
    target: list[dict[str, float]]  # per channel, the calibrated {mean, std} restored
    calibration: dict[str, Any]  # calibration JSON, as `fleetctl bundle build --calibration` reads it
    note: str


def propose(session: Session, device_id: str, against: Target = "reference") -> Proposal:
    ds = session.get(DriftScore, device_id)
    if ds is None:
        raise NotFound(f"no drift score for device {device_id!r} (no telemetry on a known bundle yet)")
    bundle = session.get(Bundle, ds.bundle_id)
    if bundle is None:
        raise Conflict(f"device {device_id!r} runs a bundle this server does not hold")
    cal = bundle.manifest["calibration"]
    bases = [Baseline(c["offset"], c["gain_q16"], c["baseline_mean_q8"], c["baseline_std_q8"]) for c in cal["channels"]]
    observed = [(int(c["mean_q8"]), int(c["var_q8"])) for c in ds.channels]
    if against == "reference":
        target = [(r["mean"], r["std"]) for r in ds.reference][: len(observed)]
        if len(target) < len(observed):
            raise Conflict(f"device {device_id!r} has no reference window on {ds.bundle_id}: use against=baseline")
    else:
        target = baseline_targets(bases)[: len(observed)]
    new = propose_calibration(observed, bases, target)
    return Proposal(
        device_id=device_id,
        base_bundle=bundle.bundle_id,
        security_counter=bundle.security_counter + 1,
        drift_score=ds.score,
        against=against,
        target=[{"mean": m, "std": s} for m, s in target],
        calibration={
            "sample_rate_hz": cal["sample_rate_hz"],
            "channels": [
                {"offset": b.offset, "gain_q16": b.gain_q16, "baseline_mean_q8": b.mean_q8, "baseline_std_q8": b.std_q8}
                for b in new
            ]
            + cal["channels"][len(new) :],
        },  # fmt: skip
        note=f"observed on {ds.bundle_id}, mapped onto the device's "
        + ("reference window (its first on the bundle)" if against == "reference" else "bundle's baseline")
        + f"; --device-scope {device_id} makes it a per-device calibration bundle",
    )


def build_bundle(
    session: Session,
    device_id: str,
    *,
    bundle_id: str,
    against: Target = "reference",
    per_device: bool = True,
    bundle_dir: Path,
    keys: TrustedKeys,
    signing_key: ec.EllipticCurvePrivateKey | None,
    actor: str,
) -> Bundle:
    """Build the proposed calibration-only bundle (same firmware and model, new calibration, counter + 1),
    signed with the server's key, and store it like an upload. `per_device`: scoped to this device."""
    proposal = propose(session, device_id, against)
    base = bundles.get(session, proposal.base_bundle)
    data = bundle_builder.calibration_only(
        bundles.read_bytes(bundle_dir, base),
        proposal.calibration,
        bundle_id=bundle_id,
        device_scope=device_id if per_device else None,
        key=signing_key,
    )
    return bundles.upload(session, data=data, keys=keys, gate=None, bundle_dir=bundle_dir, actor=actor,
                          gate_report={"passed": None, "model_unchanged_from": base.bundle_id,
                                       "base_gate_report": base.gate_report})  # fmt: skip
