"""The booted bank, checked again in Python: "never a mixed bundle" without taking the C++ verifier's word.

The agent core verifies a bank before it boots it (its own parser, mbedTLS ECDSA, SHA-256). fleet-sim checks
the same bytes again with the Python bundle reader (`tinyfleet.bundles`), reading them back from the device's
emulated flash: the metadata parses, it is the bundle the device says it runs, its signature verifies with
the device's trusted keys (`cryptography`), it is for the device's hardware class (and, when scoped, for the
device), and every component's payload re-hashed with `hashlib` equals its SHA-256 in the signed table. The
bank's metadata digest covers its component table, so equal digests mean the bank lists exactly the components
(type, version, length, SHA-256) of the bundle the device names; the re-hash proves each one's bytes are there:
no payload of another bundle (a component copied from the other bank, a half-finished install) passes.

Cost. The metadata verdict (parse, signature) depends only on the metadata bytes, so it is cached by their
SHA-256, which is recomputed on every check: a thousand devices booting one bundle verify its signature once.
Payloads are re-hashed on every check, because they are what could change behind the verifier's back; a
cache keyed by the bank's digest would hide exactly that.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from tinyfleet.bundles.errors import BundleError
from tinyfleet.bundles.format import MAX_META_PREFIX, Bundle, bundle_digest, parse_meta
from tinyfleet.bundles.signing import TrustedKeys

Read = Callable[[int, int], bytes]  # (offset, length) -> those bytes of the booted bank


@dataclass
class BankChecker:
    """One per fleet: the trusted keys and the metadata verdicts by digest."""

    keys: TrustedKeys
    _meta: dict[bytes, Bundle | str] = field(default_factory=dict)  # digest -> parsed and signed, or the problem
    checks: int = 0

    @classmethod
    def of_der(cls, keys: Iterable[bytes]) -> BankChecker:
        public = [load_der_public_key(k) for k in keys]
        return cls(TrustedKeys.of(k for k in public if isinstance(k, ec.EllipticCurvePublicKey)))

    def problem(self, read: Read, reported: bytes, hw: str, device_id: str) -> str | None:
        """Why the bank behind `read` is not exactly the signed bundle `reported` (its digest), or None."""
        self.checks += 1
        try:
            prefix = read(0, MAX_META_PREFIX)
            digest = bundle_digest(prefix)
        except (BundleError, ValueError) as e:
            return f"the booted bank holds no bundle metadata ({e})"
        if digest != reported:
            return f"the booted bank holds bundle {digest.hex()[:16]}, the device says it runs {reported.hex()[:16]}"
        meta = self._meta.get(digest)
        if meta is None:
            meta = self._meta[digest] = self._verify_meta(prefix)
        if isinstance(meta, str):
            return meta
        m = meta.manifest
        if m.hardware_class != hw:
            return f"the booted bundle {m.bundle_id} is for {m.hardware_class!r}, the device is {hw!r}"
        if m.device_scope is not None and m.device_scope != device_id:
            return f"the booted bundle {m.bundle_id} is scoped to {m.device_scope!r}, not {device_id!r}"
        for c in sorted(meta.components, key=lambda c: c.offset):
            try:
                got = hashlib.sha256(read(c.offset, c.length)).digest()
            except ValueError as e:
                return f"{m.bundle_id}: the {c.type.label} payload does not fit in the bank ({e})"
            if got != c.sha256:
                return (f"{m.bundle_id}: the {c.type.label} payload [{c.offset}, {c.end}) hashes to {got.hex()[:16]}, "
                        f"its signed table says {c.sha256.hex()[:16]}")  # fmt: skip
        return None

    def _verify_meta(self, prefix: bytes) -> Bundle | str:
        try:
            meta = parse_meta(prefix)
            self.keys.verify(meta.signature.key_id, meta.signature.signature, meta.signed_region)
        except BundleError as e:
            return f"the booted bank's metadata does not verify in Python: {e}"
        return meta
