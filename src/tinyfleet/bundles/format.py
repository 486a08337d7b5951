"""Byte layout of a bundle: header, component table, signature block (docs/bundle-format.md).

`parse_meta` reads the metadata prefix `[0, payload_offset)` and checks its structure in the order the
spec gives; it never looks at payloads or signatures. `Bundle` is the parsed result.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from . import errors as E
from .components import REQUIRED_COMPONENTS, ComponentType
from .manifest import MAX_MANIFEST_LEN, Manifest

MAGIC = b"\x89TFB\r\n\x1a\n"
FORMAT_VERSION = 1
HEADER_LEN = 32
ENTRY_LEN = 80
SIG_BLOCK_LEN = 96
MAX_COMPONENTS = 8
MAX_TOTAL_LEN = 64 * 1024 * 1024
ALIGN = 16
SIG_ALG_ECDSA_P256_SHA256 = 1
MAX_SIG_LEN = 72
VERSION_FIELD_LEN = 32
# The largest metadata prefix [0, payload_offset) any v1 bundle can have: 32 + 4096 + 8 x 80 + 96, aligned.
MAX_META_PREFIX = 4864

_HEADER = struct.Struct("<8sHHHBBHHIII")
_ENTRY = struct.Struct("<BBHIII32s32s")
_SIG = struct.Struct("<BBH8s72s12s")


def align16(x: int) -> int:
    return (x + ALIGN - 1) & ~(ALIGN - 1)


def signed_len(manifest_len: int, count: int) -> int:
    return HEADER_LEN + manifest_len + ENTRY_LEN * count


def payload_offset_for(manifest_len: int, count: int) -> int:
    return align16(signed_len(manifest_len, count) + SIG_BLOCK_LEN)


@dataclass(frozen=True)
class Header:
    manifest_len: int
    component_count: int
    payload_offset: int
    total_len: int

    @property
    def signed_len(self) -> int:
        return signed_len(self.manifest_len, self.component_count)

    def encode(self) -> bytes:
        return _HEADER.pack(
            MAGIC, FORMAT_VERSION, HEADER_LEN, self.manifest_len, self.component_count, 0,
            ENTRY_LEN, SIG_BLOCK_LEN, self.payload_offset, self.total_len, 0,
        )  # fmt: skip

    @classmethod
    def decode(cls, data: bytes) -> Header:
        head = bytes(data[:8])
        if head != MAGIC[: len(head)]:
            raise E.BadMagic(f"not a tinyfleet bundle (first bytes {head.hex(' ')})")
        if len(data) < HEADER_LEN:
            raise E.Truncated(f"{len(data)} bytes is shorter than the {HEADER_LEN}-byte header")
        (_m, version, hlen, mlen, count, flags, elen, slen, poff, total, rsv) = _HEADER.unpack_from(data)
        if version != FORMAT_VERSION:
            raise E.UnsupportedVersion(f"format version {version}, this reader supports {FORMAT_VERSION}")
        if hlen != HEADER_LEN or elen != ENTRY_LEN or slen != SIG_BLOCK_LEN:
            raise E.MalformedHeader(
                f"header lengths {hlen}/{elen}/{slen} differ from {HEADER_LEN}/{ENTRY_LEN}/{SIG_BLOCK_LEN}"
            )
        if flags or rsv:
            raise E.MalformedHeader("reserved header flags or bytes are not zero")
        if mlen == 0 or count == 0:
            raise E.MalformedHeader(f"manifest_len {mlen} and component_count {count} must be >= 1")
        if mlen > MAX_MANIFEST_LEN:
            raise E.Oversize(f"manifest_len {mlen} is above the {MAX_MANIFEST_LEN}-byte maximum")
        if count > MAX_COMPONENTS:
            raise E.Oversize(f"component_count {count} is above the maximum of {MAX_COMPONENTS}")
        if poff != payload_offset_for(mlen, count):
            raise E.MalformedHeader(f"payload_offset {poff} should be {payload_offset_for(mlen, count)}")
        if total > MAX_TOTAL_LEN:
            raise E.Oversize(f"total_len {total} is above the {MAX_TOTAL_LEN}-byte maximum")
        if total < poff:
            raise E.OutOfRange(f"total_len {total} ends before the payloads start at {poff}")
        return cls(mlen, count, poff, total)


@dataclass(frozen=True)
class Component:
    type: ComponentType
    offset: int
    length: int
    version: str
    sha256: bytes

    @property
    def end(self) -> int:
        return self.offset + self.length

    def encode(self) -> bytes:
        v = self.version.encode("ascii")
        return _ENTRY.pack(int(self.type), 0, 0, self.offset, self.length, 0, v, self.sha256)


def check_version_string(version: str) -> None:
    if not 1 <= len(version) <= VERSION_FIELD_LEN or not version.isascii() or not version.isprintable():
        raise E.MalformedTable(f"component version {version!r} must be 1..32 printable ASCII characters")


def _decode_entry(data: bytes, pos: int, index: int, header: Header) -> Component:
    ctype, flags, rsv1, offset, length, rsv2, vraw, digest = _ENTRY.unpack_from(data, pos)
    if ctype not in ComponentType._value2member_map_:
        raise E.MalformedTable(f"component {index} has unknown type {ctype}")
    if flags or rsv1 or rsv2:
        raise E.MalformedTable(f"component {index} has non-zero reserved fields")
    text, _, pad = vraw.partition(b"\x00")
    if not text or any(pad) or any(b < 0x20 or b > 0x7E for b in text):
        raise E.MalformedTable(f"component {index} version field is not 1..32 printable ASCII, NUL-padded")
    if offset % ALIGN or offset < header.payload_offset:
        raise E.OutOfRange(f"component {index} offset {offset} is unaligned or inside the metadata")
    if length == 0 or offset + length > header.total_len:
        raise E.OutOfRange(f"component {index} [{offset}, {offset + length}) lies outside the bundle")
    return Component(ComponentType(ctype), offset, length, text.decode("ascii"), digest)


@dataclass(frozen=True)
class SignatureBlock:
    algorithm: int
    key_id: bytes
    signature: bytes

    def encode(self) -> bytes:
        return _SIG.pack(self.algorithm, 0, len(self.signature), self.key_id, self.signature, b"")

    @classmethod
    def decode(cls, data: bytes, pos: int) -> SignatureBlock:
        alg, rsv, slen, key_id, sig, tail = _SIG.unpack_from(data, pos)
        if alg != SIG_ALG_ECDSA_P256_SHA256:
            raise E.BadSignature(f"signature algorithm {alg} is not supported (expected 1, ECDSA P-256/SHA-256)")
        if rsv or any(tail) or not 8 <= slen <= MAX_SIG_LEN or any(sig[slen:]):
            raise E.BadSignature("signature block is malformed (length, padding or reserved bytes)")
        return cls(alg, key_id, sig[:slen])


@dataclass(frozen=True)
class Bundle:
    """A structurally valid bundle's metadata (and, when parsed from a whole file, its bytes)."""

    header: Header
    manifest: Manifest
    components: tuple[Component, ...]
    signature: SignatureBlock
    meta_bytes: bytes  # [0, payload_offset): what a device receives before any payload
    data: bytes | None = None

    @property
    def digest(self) -> bytes:
        return bundle_digest(self.meta_bytes)

    @property
    def signed_region(self) -> bytes:
        return self.meta_bytes[: self.header.signed_len]

    @property
    def content_digest(self) -> bytes:
        return hashlib.sha256(self.signed_region).digest()

    def component(self, ctype: ComponentType) -> Component:
        for c in self.components:
            if c.type == ctype:
                return c
        raise E.MissingComponent(f"no {ctype.label} component")  # unreachable for a parsed bundle

    def payload(self, which: Component | ComponentType) -> bytes:
        c = which if isinstance(which, Component) else self.component(which)
        if self.data is None:
            raise ValueError("this Bundle was parsed from its metadata only; it holds no payloads")
        return self.data[c.offset : c.end]


def parse_meta(data: bytes) -> Bundle:
    """Parse and structurally check `[0, payload_offset)`. Extra bytes after it are ignored."""
    header = Header.decode(data)
    if len(data) < header.payload_offset:
        raise E.Truncated(f"{len(data)} bytes is shorter than the {header.payload_offset}-byte metadata")
    mstart = HEADER_LEN
    manifest = Manifest.decode(bytes(data[mstart : mstart + header.manifest_len]))
    tstart = mstart + header.manifest_len
    comps = [_decode_entry(data, tstart + i * ENTRY_LEN, i, header) for i in range(header.component_count)]
    seen: set[ComponentType] = set()
    for c in comps:
        if c.type in seen:
            raise E.DuplicateComponent(f"component type {c.type.label} appears more than once")
        seen.add(c.type)
    ordered = sorted(comps, key=lambda c: c.offset)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b.offset < a.end:
            raise E.OverlappingComponents(f"{a.type.label} [{a.offset}, {a.end}) overlaps {b.type.label} at {b.offset}")
    missing = [t.label for t in REQUIRED_COMPONENTS if t not in seen]
    if missing:
        raise E.MissingComponent(f"required component(s) missing: {', '.join(missing)}")
    sig = SignatureBlock.decode(data, header.signed_len)
    if any(data[header.signed_len + SIG_BLOCK_LEN : header.payload_offset]):
        raise E.BadSignature("the padding between the signature block and payload_offset is not zero")
    return Bundle(header, manifest, tuple(comps), sig, bytes(data[: header.payload_offset]))


def bundle_digest(data: bytes) -> bytes:
    """A bundle's name: SHA-256 of its metadata prefix `[0, payload_offset)`. The server stores the file under
    it, MQTT topics and desired states carry it, a device reports it for the bundle it runs. `data` is a whole
    bundle or any prefix of one that holds its metadata; only the header is checked."""
    poff = Header.decode(data).payload_offset
    if len(data) < poff:
        raise E.Truncated(f"{len(data)} bytes is shorter than the {poff}-byte metadata")
    return hashlib.sha256(data[:poff]).digest()


def content_digest(data: bytes) -> bytes:
    """What a bundle carries, whatever its signature: SHA-256 of its signed region `[0, T)` (header, manifest,
    table and so every payload's hash). Two bundles with the same content digest are the same bundle to a
    device (it is `UpToDate`), even when their digests differ (another signature over the same bytes)."""
    t = Header.decode(data).signed_len
    if len(data) < t:
        raise E.Truncated(f"{len(data)} bytes is shorter than the {t}-byte signed region")
    return hashlib.sha256(data[:t]).digest()


def check_gap(data: bytes | memoryview, at: int, end: int, origin: int = 0) -> None:
    """Bytes outside every payload carry nothing the signature covers: they must be zero, so that a bundle
    has one encoding (docs/bundle-format.md, "Component table"). `data[0]` is the bundle's byte `origin`."""
    if any(data[at:end]):
        raise E.OutOfRange(f"non-zero bytes in [{origin + at}, {origin + end}), outside every payload")


def check_file_length(size: int, total: int) -> None:
    if size < total:
        raise E.Truncated(f"file is {size} bytes, the header says {total}")
    if size > total:
        raise E.OutOfRange(f"file is {size} bytes, {size - total} more than the header's total_len {total}")


def parse_bundle(data: bytes) -> Bundle:
    """Parse a whole bundle file: metadata structure plus the file length (no signature or hash checks)."""
    meta = parse_meta(data)
    check_file_length(len(data), meta.header.total_len)
    return Bundle(meta.header, meta.manifest, meta.components, meta.signature, meta.meta_bytes, bytes(data))
