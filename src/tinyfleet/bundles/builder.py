"""Assemble and sign a bundle from a manifest and its five component payloads: the byte layout.

A bundle for a device is built through `release.build_for_profile`, which calls this with the hardware
profile's firmware offset and checks the bank size; test vectors call it directly for layouts of their own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric import ec

from . import errors as E
from .components import REQUIRED_COMPONENTS, ComponentType
from .format import (
    MAX_TOTAL_LEN,
    SIG_ALG_ECDSA_P256_SHA256,
    Component,
    Header,
    SignatureBlock,
    align16,
    check_version_string,
    payload_offset_for,
)
from .manifest import Manifest
from .signing import key_id, sign


def build_bundle(
    manifest: Manifest,
    components: Mapping[ComponentType, tuple[str, bytes]],
    signing_key: ec.EllipticCurvePrivateKey,
    *,
    firmware_offset: int | None = None,
) -> bytes:
    """Return the signed bundle bytes. `components` maps each type to (version string, payload).

    Payloads follow the metadata in type order, each 16-byte aligned. With `firmware_offset`, the firmware
    starts exactly there (for targets that run it in place, linked for one address) and the other payloads
    follow it; the bytes before it are zero.
    """
    missing = [t.label for t in REQUIRED_COMPONENTS if t not in components]
    if missing:
        raise E.MissingComponent(f"cannot build without component(s): {', '.join(missing)}")
    manifest_bytes = manifest.encode()
    types = sorted(components)
    poff = payload_offset_for(len(manifest_bytes), len(types))
    entries: list[Component] = []
    offset = poff
    if firmware_offset is not None:
        if firmware_offset % 16 or firmware_offset < poff:
            raise E.OutOfRange(
                f"firmware_offset {firmware_offset} must be a multiple of 16 at or after the metadata's end ({poff})"
            )
        offset = firmware_offset
    for t in types:
        version, payload = components[t]
        check_version_string(version)
        if not payload:
            raise E.OutOfRange(f"{ComponentType(t).label} payload is empty")
        offset = align16(offset)
        entries.append(Component(ComponentType(t), offset, len(payload), version, hashlib.sha256(payload).digest()))
        offset += len(payload)
    total = offset
    if total > MAX_TOTAL_LEN:
        raise E.Oversize(f"bundle would be {total} bytes, above the {MAX_TOTAL_LEN}-byte maximum")
    header = Header(len(manifest_bytes), len(types), poff, total)
    signed = header.encode() + manifest_bytes + b"".join(c.encode() for c in entries)
    sig = SignatureBlock(SIG_ALG_ECDSA_P256_SHA256, key_id(signing_key.public_key()), sign(signing_key, signed))
    out = bytearray(total)
    meta = signed + sig.encode()
    out[: len(meta)] = meta
    for c in entries:
        out[c.offset : c.end] = components[c.type][1]
    return bytes(out)
