"""The bundle store: verify and gate an upload, keep the file, record it; retire bundles no one uses."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from sqlmodel import Session, col, select

from tinyfleet.bundles import Bundle as ParsedBundle
from tinyfleet.bundles import BundleError, ComponentType, TrustedKeys, content_digest, verify_bundle
from tinyfleet.bundles.components import Calibration, Thresholds
from tinyfleet.bundles.errors import ComponentFormatError
from tinyfleet.bundles.inspect import describe
from tinyfleet.bundles.profiles import load_profiles
from tinyfleet.server.db.models import Bundle, Device, Rollout
from tinyfleet.server.files import private_dir, write_atomic
from tinyfleet.server.rollouts.states import ACTIVE
from tinyfleet.server.services import signing_keys
from tinyfleet.server.services.errors import BadRequest, Conflict, NotFound, Unprocessable

MAX_UPLOAD = 64 * 1024 * 1024


class ModelGate(Protocol):
    """Checks a verified bundle's model against its hardware profile; returns a JSON-able report or raises
    Unprocessable naming the failed checks."""

    def check(self, bundle: ParsedBundle) -> dict[str, Any]: ...


class LibraryModelGate:
    """The model gate of `tinyfleet.bundles.gate`, run on the bundle's model component with the profile of
    its hardware class and the deployment limits signed in its manifest."""

    def check(self, bundle: ParsedBundle) -> dict[str, Any]:
        from tinyfleet.bundles.gate import GateInputError, validate_model
        from tinyfleet.bundles.profiles import load_profile

        m = bundle.manifest
        try:
            profile = load_profile(m.hardware_class)
            report = validate_model(bundle.payload(ComponentType.MODEL), profile, m.deployment)
        except GateInputError as exc:
            raise Unprocessable(f"model gate: {exc}") from exc
        if not report.passed:
            names = ", ".join(c.name for c in report.failures())
            raise Unprocessable(f"model gate failed: {names}")
        # The signed contract must describe the model it travels with, or the firmware would feed it wrong.
        for what, signed, measured in (
            ("input", m.model.input, report.input),
            ("output", m.model.output, report.output),
        ):
            if signed != measured:
                raise Unprocessable(f"manifest {what} contract {signed} differs from the model's {measured}")
        if m.model.arena_bytes < report.arena_bytes:
            raise Unprocessable(
                f"manifest arena_bytes {m.model.arena_bytes} is below the {report.arena_bytes} the model needs"
            )
        return {
            "passed": True,
            "checks": {c.name: c.status for c in report.checks},
            "arena_bytes": report.arena_bytes,
            "report": report.to_dict(),  # every check's figure and data (per-layer saturation, ...)
        }


def digest_of(parsed: ParsedBundle) -> str:
    return parsed.digest.hex()


def bundle_path(bundle_dir: Path, digest: str) -> Path:
    return bundle_dir / f"{digest}.tfb"


def _store(bundle_dir: Path, digest: str, data: bytes) -> None:
    private_dir(bundle_dir)
    write_atomic(bundle_path(bundle_dir, digest), data)


def _payload_summaries(parsed: ParsedBundle) -> dict[str, Any]:
    try:
        cal = Calibration.decode(parsed.payload(ComponentType.CALIBRATION)).to_json()
        th = Thresholds.decode(parsed.payload(ComponentType.THRESHOLDS)).to_json()
    except ComponentFormatError as exc:
        raise Unprocessable(f"bundle component: {exc}") from exc
    return {"calibration": cal, "thresholds": th}


def check_fits(bundle_id: str, hardware_class: str, size: int) -> None:
    """Refuse a bundle no device of its class could install: every device would report TooLarge."""
    profiles = load_profiles()
    profile = profiles.get(hardware_class)
    if profile is None:
        raise Unprocessable(f"bundle {bundle_id!r} is for {hardware_class!r}, which has no hardware profile "
                            f"(known: {', '.join(sorted(profiles))})")  # fmt: skip
    if size > profile.bank_bytes:
        raise Unprocessable(f"bundle {bundle_id!r} is {size} bytes; a {hardware_class} update bank holds "
                            f"{profile.bank_bytes} bytes")  # fmt: skip


def upload(
    session: Session,
    *,
    data: bytes,
    keys: TrustedKeys,
    gate: ModelGate | None,
    bundle_dir: Path,
    actor: str,
    gate_report: dict[str, Any] | None = None,
    grants_keys: Sequence[str] = (),
) -> Bundle:
    """`grants_keys`: key ids the bundle's firmware adds to a device's trusted keys (services/signing_keys.py)."""
    grants = signing_keys.check_key_ids(grants_keys)
    if not data:
        raise BadRequest("empty body: send the bundle file as application/octet-stream")
    if len(data) > MAX_UPLOAD:
        raise BadRequest(f"{len(data)} bytes is above the {MAX_UPLOAD}-byte bundle maximum")
    if not keys.keys:
        raise Unprocessable("the server trusts no signing keys (set TINYFLEET_TRUSTED_KEY_FILES)")
    try:
        parsed = verify_bundle(data, keys)
    except BundleError as exc:
        raise Unprocessable(f"bundle refused: {exc}") from exc
    m = parsed.manifest
    check_fits(m.bundle_id, m.hardware_class, len(data))
    digest = digest_of(parsed)
    stored = session.get(Bundle, m.bundle_id)
    if stored is not None:
        if content_digest(read_bytes(bundle_dir, stored)) == parsed.content_digest:
            # Another signature over the same signed region: the same bundle to a device (UpToDate).
            raise Conflict(f"bundle id {m.bundle_id!r} is already stored with this content (digest "
                           f"{stored.digest[:16]}...); this file differs only in its signature")  # fmt: skip
        raise Conflict(f"bundle id {m.bundle_id!r} is already stored")
    if session.exec(select(Bundle).where(Bundle.digest == digest)).first() is not None:
        raise Conflict(f"these exact bundle bytes are already stored (digest {digest[:16]}...)")
    summaries = _payload_summaries(parsed)
    if gate_report is None:  # (a server-built bundle brings the report of the gate run that built it)
        gate_report = gate.check(parsed) if gate is not None else {"passed": None, "skipped": "run_model_gate=false"}
    _store(bundle_dir, digest, data)
    info = describe(parsed)
    info.update(summaries)
    row = Bundle(
        bundle_id=m.bundle_id,
        digest=digest,
        hardware_class=m.hardware_class,
        device_scope=m.device_scope,
        security_counter=m.security_counter,
        created=m.created,
        expires=m.expires,
        rollback_target=m.rollback_target,
        size=len(data),
        payload_offset=parsed.header.payload_offset,
        components=info["components"],
        manifest=info,
        gate_report=gate_report,
        uploaded_at=time.time(),
        uploaded_by=actor,
        grants_keys=grants,
    )
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def get(session: Session, bundle_id: str) -> Bundle:
    row = session.get(Bundle, bundle_id)
    if row is None:
        raise NotFound(f"no bundle {bundle_id!r}")
    return row


def by_digest(session: Session, digest_hex: str) -> Bundle | None:
    return session.exec(select(Bundle).where(Bundle.digest == digest_hex)).first()


def list_bundles(session: Session, hardware_class: str | None = None) -> list[Bundle]:
    q = select(Bundle)
    if hardware_class:
        q = q.where(Bundle.hardware_class == hardware_class)
    return list(session.exec(q.order_by(col(Bundle.uploaded_at).desc())))


def read_bytes(bundle_dir: Path, row: Bundle) -> bytes:
    return bundle_path(bundle_dir, row.digest).read_bytes()


def in_use_by(session: Session, bundle_id: str) -> str | None:
    """Why the bundle cannot be retired, or None."""
    dev = session.exec(select(Device.id).where(Device.desired_bundle == bundle_id)).first()
    if dev is not None:
        return f"device {dev} has it as desired state"
    ro = session.exec(
        select(Rollout.id).where(Rollout.bundle_id == bundle_id, col(Rollout.state).in_(ACTIVE))
    ).first()
    if ro is not None:
        return f"rollout {ro} is active"
    return None
