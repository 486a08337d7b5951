"""Which signing keys the fleet trusts, as far as the server can know it.

A device holds its trusted keys in its firmware's agent configuration; it never reports them. What the server
knows: a device that runs a bundle trusts the key that signed it (it verified the signature before installing),
and the operator declares, when uploading a bundle, the keys its firmware adds to the device's trusted set
(`grants_keys`, `fleetctl rollout upload --grants-key NEW.pub.pem`). A rollout of a bundle signed by a key that
target devices are not known to trust is refused unless the operator says otherwise: those devices would refuse
it (`UnknownKeyId`) and the canary would halt. docs/operations.md, "Rotating a signing key", is the procedure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from sqlmodel import Session, select

from tinyfleet.server.db.models import Bundle, Device
from tinyfleet.server.services.errors import BadRequest

KEY_ID_RE = re.compile(r"[0-9a-f]{16}")  # full match


def signer(bundle: Bundle) -> str:
    return str(bundle.manifest.get("signature", {}).get("key_id", ""))


def trusted_by_runner(bundle: Bundle) -> set[str]:
    """Keys a device running `bundle` trusts: its signer, and what its firmware adds."""
    return {signer(bundle), *bundle.grants_keys}


def check_key_ids(key_ids: Iterable[str]) -> list[str]:
    out = []
    for k in key_ids:
        if not KEY_ID_RE.fullmatch(k):
            raise BadRequest(f"key id {k!r} must be 16 lowercase hex digits (fleetctl keys show KEY.pem)")
        out.append(k)
    return sorted(set(out))


def not_trusting(session: Session, bundle: Bundle, devices: Sequence[Device]) -> list[Device]:
    """Target devices that run a bundle the server holds whose trusted keys leave out `bundle`'s signer.
    Devices running a bundle the server does not hold are not judged (nothing is known about their keys)."""
    key = signer(bundle)
    out = []
    for d in devices:
        running = session.get(Bundle, d.running_bundle) if d.running_bundle else None
        if running is not None and key not in trusted_by_runner(running):
            out.append(d)
    return out


def fleet_keys(session: Session, server_keys: Iterable[str]) -> list[dict[str, object]]:
    """Per key id: whether the server accepts uploads signed by it, the bundles it signed, and how many devices
    are known to trust it (by the bundle they run)."""
    bundles = {b.bundle_id: b for b in session.exec(select(Bundle))}
    keys: dict[str, dict[str, object]] = {}

    def entry(k: str) -> dict[str, object]:
        return keys.setdefault(k, {"key_id": k, "server_trusts": False, "bundles_signed": [], "devices_trusting": 0})

    for k in server_keys:
        entry(k)["server_trusts"] = True
    for b in bundles.values():
        entry(signer(b))["bundles_signed"].append(b.bundle_id)  # type: ignore[union-attr]
        for g in b.grants_keys:
            entry(g)
    unknown = 0
    for d in session.exec(select(Device)):
        running = bundles.get(d.running_bundle) if d.running_bundle else None
        if running is None:
            unknown += 1
            continue
        for k in trusted_by_runner(running):
            entry(k)["devices_trusting"] = int(entry(k)["devices_trusting"]) + 1  # type: ignore[call-overload]
    out = sorted(keys.values(), key=lambda e: str(e["key_id"]))
    for e in out:
        e["devices_unknown"] = unknown
    return out
