"""Verification: whole-file and streaming (chunk by chunk), same checks in the same order.

Trust is decided from the metadata prefix alone (structure, signature, policy) before any payload byte is
considered; payloads are then checked against the signed hashes as they arrive.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from . import errors as E
from .components import ComponentType
from .format import MAGIC, Bundle, Component, Header, check_file_length, check_gap, parse_meta
from .signing import TrustedKeys
from .timefmt import iso_utc


@dataclass(frozen=True)
class VerifyPolicy:
    """What the receiving device knows: its class, id, stored security counter and clock."""

    hardware_class: str | None = None
    device_id: str | None = None
    min_counter: int = 0
    now: int | None = None  # Unix seconds; None = the verifier's clock


def check_trust(meta: Bundle, keys: TrustedKeys, policy: VerifyPolicy | None = None) -> None:
    """Signature over the signed region, then policy (docs/bundle-format.md, "Verification order")."""
    keys.verify(meta.signature.key_id, meta.signature.signature, meta.signed_region)
    p = policy or VerifyPolicy()
    m = meta.manifest
    if p.hardware_class is not None and m.hardware_class != p.hardware_class:
        raise E.WrongHardwareClass(f"bundle is for {m.hardware_class!r}, device is {p.hardware_class!r}")
    if m.device_scope is not None and p.device_id is not None and m.device_scope != p.device_id:
        raise E.WrongDevice(f"bundle is scoped to device {m.device_scope!r}, not {p.device_id!r}")
    now = int(time.time()) if p.now is None else p.now
    if m.expires is not None and now >= m.expires:
        raise E.Expired(f"bundle expired at {iso_utc(m.expires)} (now {iso_utc(now)})")
    if m.security_counter < p.min_counter:
        raise E.CounterTooLow(f"security counter {m.security_counter} is below the device's {p.min_counter}")


def verify_bundle(data: bytes, keys: TrustedKeys, policy: VerifyPolicy | None = None) -> Bundle:
    """Verify a whole bundle file; return it parsed, or raise the first `BundleError` found."""
    meta = parse_meta(data)
    check_trust(meta, keys, policy)
    view = memoryview(data)
    at = meta.header.payload_offset  # the first byte not yet checked
    for c in sorted(meta.components, key=lambda c: c.offset):  # the order a stream delivers them
        check_gap(view, at, c.offset)
        at = c.end
        if len(data) < c.end:
            raise E.Truncated(f"file is {len(data)} bytes; the {c.type.label} payload ends at {c.end}")
        if hashlib.sha256(view[c.offset : c.end]).digest() != c.sha256:
            raise E.HashMismatch(f"{c.type.label} payload does not match its SHA-256")
    check_gap(view, at, meta.header.total_len)
    check_file_length(len(data), meta.header.total_len)
    return Bundle(meta.header, meta.manifest, meta.components, meta.signature, meta.meta_bytes, bytes(data))


class StreamVerifier:
    """Feed a bundle in chunks of any size; errors are raised as soon as the offending byte arrives.

    After the metadata prefix has arrived and verified, `meta` is set. `verified` lists the components whose
    hashes have matched so far; `finish()` returns the verified metadata once every byte has arrived.
    """

    def __init__(self, keys: TrustedKeys, policy: VerifyPolicy | None = None) -> None:
        self._keys, self._policy = keys, policy
        self._prefix = bytearray()
        self._need = 32  # bytes of prefix wanted before the next parse attempt
        self.meta: Bundle | None = None
        self.verified: list[ComponentType] = []
        self._pos = 0
        self._order: list[Component] = []
        self._hash = hashlib.sha256()
        self._cur = 0  # index into _order of the component being hashed
        self._inside_lo = self._inside_hi = 0  # [offset, end) of that component once trusted; empty before

    def feed(self, chunk: bytes) -> None:
        end = self._pos + len(chunk)
        if self._inside_lo <= self._pos and end < self._inside_hi:
            # Fast path, most chunks: wholly inside the component being hashed and not completing it.
            self._hash.update(chunk)
            self._pos = end
            return
        view = memoryview(chunk)
        if self.meta is None:
            view = self._feed_prefix(view)
            if self.meta is None or not len(view):
                return
        self._feed_payload(view)

    def _feed_prefix(self, view: memoryview) -> memoryview:
        while self.meta is None and len(view):
            take = min(len(view), self._need - len(self._prefix))
            self._prefix += view[:take]
            view = view[take:]
            self._pos += take
            if len(self._prefix) < self._need:
                if len(self._prefix) <= len(MAGIC) and self._prefix != MAGIC[: len(self._prefix)]:
                    Header.decode(bytes(self._prefix))  # raises BadMagic now, not at the end of the stream
                return view
            if self._need == 32:
                self._need = Header.decode(bytes(self._prefix)).payload_offset
                continue
            meta = parse_meta(bytes(self._prefix))
            check_trust(meta, self._keys, self._policy)
            self.meta = meta
            self._order = sorted(meta.components, key=lambda c: c.offset)
        return view

    def _feed_payload(self, view: memoryview) -> None:
        assert self.meta is not None
        total = self.meta.header.total_len
        if self._pos + len(view) > total:
            # Check the payload bytes before the excess first, so the verdict matches whole-file verification.
            self._feed_payload(view[: total - self._pos])
            raise E.OutOfRange(f"data continues past the header's total_len {total}")
        start = self._pos
        self._pos += len(view)
        while self._cur < len(self._order):
            c = self._order[self._cur]
            # The gap before this payload: offsets relative to the chunk, as check_gap sees it.
            check_gap(view, 0, max(0, min(self._pos, c.offset) - start), start)
            lo, hi = max(start, c.offset), min(self._pos, c.end)
            if lo < hi:
                self._hash.update(view[lo - start : hi - start])
            if self._pos < c.end:
                self._inside_lo, self._inside_hi = c.offset, c.end
                return
            if self._hash.digest() != c.sha256:
                raise E.HashMismatch(f"{c.type.label} payload does not match its SHA-256")
            self.verified.append(c.type)
            self._hash = hashlib.sha256()
            self._cur += 1
            view, start = view[c.end - start :], c.end
        self._inside_lo = self._inside_hi = 0
        check_gap(view, 0, len(view), start)  # after the last payload, up to total_len

    def finish(self) -> Bundle:
        if self.meta is None:
            parse_meta(bytes(self._prefix))  # the whole-file verdict for these bytes (BadMagic, Truncated, ...)
            raise E.Truncated(f"stream ended after {self._pos} bytes, inside the bundle's metadata")
        total = self.meta.header.total_len
        if self._pos < total:
            raise E.Truncated(f"stream ended after {self._pos} of {total} bytes")
        return self.meta
