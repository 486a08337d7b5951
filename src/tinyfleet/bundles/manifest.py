"""The signed manifest: typed fields and their TLV encoding (docs/bundle-format.md, "Manifest").

`Manifest.encode()` gives the unique encoding (tags ascending); `Manifest.decode()` checks every rule of the
spec and keeps unknown non-critical fields in `extra`, so a manifest written by a newer tool round-trips.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass, field
from enum import IntEnum

from .errors import MalformedManifest

MAX_MANIFEST_LEN = 4096
CRITICAL_BIT = 0x8000

_ID_RE = re.compile(r"[A-Za-z0-9._:+-]{1,64}")
_CLASS_RE = re.compile(r"[a-z0-9_-]{1,32}")


class DType(IntEnum):
    INT8 = 1
    UINT8 = 2
    INT16 = 3
    FLOAT32 = 4

    @property
    def itemsize(self) -> int:
        return {DType.INT8: 1, DType.UINT8: 1, DType.INT16: 2, DType.FLOAT32: 4}[self]

    @property
    def numpy_name(self) -> str:
        return {DType.INT8: "int8", DType.UINT8: "uint8", DType.INT16: "int16", DType.FLOAT32: "float32"}[self]

    @classmethod
    def from_name(cls, name: str) -> DType:
        for d in cls:
            if d.numpy_name == name:
                return d
        raise ValueError(f"unsupported tensor dtype {name!r} (expected int8, uint8, int16 or float32)")


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    dtype: DType
    scale: float
    zero_point: int

    @property
    def nbytes(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n * self.dtype.itemsize


@dataclass(frozen=True)
class ModelContract:
    """What the model expects of its input, signed together with the model so firmware can't mismatch it."""

    input: TensorSpec
    output: TensorSpec
    feature_extractor_version: str
    arena_bytes: int


@dataclass(frozen=True)
class Deployment:
    min_battery_pct: int
    max_latency_ms: int
    peak_ram_bytes: int
    target_environments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Provenance:
    validation_report_digest: bytes
    dataset_digest: bytes | None = None
    training_run_id: str | None = None


@dataclass(frozen=True)
class Manifest:
    bundle_id: str
    hardware_class: str
    security_counter: int
    created: int
    deployment: Deployment
    model: ModelContract
    provenance: Provenance
    expires: int | None = None
    device_scope: str | None = None
    rollback_target: str | None = None
    # Unknown non-critical (tag, value) pairs from a newer writer, kept for round trips.
    extra: tuple[tuple[int, bytes], ...] = field(default=())

    def encode(self) -> bytes:
        fields = _to_fields(self)
        _validate_fields(fields)
        out = bytearray()
        for tag in sorted(fields):
            value = fields[tag]
            out += struct.pack("<HH", tag, len(value)) + value
        if len(out) > MAX_MANIFEST_LEN:
            raise MalformedManifest(f"manifest encodes to {len(out)} bytes, above the {MAX_MANIFEST_LEN} maximum")
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        fields: dict[int, bytes] = {}
        pos, last = 0, -1
        while pos < len(data):
            if pos + 4 > len(data):
                raise MalformedManifest(f"manifest entry header at byte {pos} runs past the manifest end")
            tag, length = struct.unpack_from("<HH", data, pos)
            pos += 4
            if pos + length > len(data):
                raise MalformedManifest(f"manifest field 0x{tag:04x} length {length} runs past the manifest end")
            if tag <= last:
                raise MalformedManifest(
                    f"manifest field 0x{tag:04x} out of order or repeated (after 0x{last:04x})"
                )
            fields[tag] = bytes(data[pos : pos + length])
            pos += length
            last = tag
        _validate_fields(fields)
        return _from_fields(fields)


# --- field table ---------------------------------------------------------------------------------------

# tag: (name, kind, required). kind drives both validation and (de)serialization.
FIELDS: dict[int, tuple[str, str, bool]] = {
    0x0001: ("bundle_id", "id", True),
    0x0002: ("hardware_class", "class", True),
    0x0003: ("device_scope", "id", False),
    0x0004: ("security_counter", "u32", True),
    0x0005: ("created", "u64", True),
    0x0006: ("expires", "u64", False),
    0x0007: ("rollback_target", "id", False),
    0x0010: ("target_environments", "str255", False),
    0x0011: ("min_battery_pct", "pct", True),
    0x0012: ("max_latency_ms", "u32", True),
    0x0013: ("peak_ram_bytes", "u32", True),
    0x0020: ("input_shape", "shape", True),
    0x0021: ("input_dtype", "dtype", True),
    0x0022: ("input_quant", "quant", True),
    0x0023: ("output_shape", "shape", True),
    0x0024: ("output_dtype", "dtype", True),
    0x0025: ("output_quant", "quant", True),
    0x0026: ("feature_extractor_version", "str32", True),
    0x0027: ("arena_bytes", "u32", True),
    0x0030: ("dataset_digest", "digest", False),
    0x0031: ("training_run_id", "id", False),
    0x0032: ("validation_report_digest", "digest", True),
}
_TAG = {name: tag for tag, (name, _, _) in FIELDS.items()}


def _ascii(value: bytes, tag: int, max_len: int) -> str:
    name = FIELDS[tag][0]
    if not 1 <= len(value) <= max_len:
        raise MalformedManifest(f"{name} must be 1..{max_len} bytes, got {len(value)}")
    if any(b < 0x20 or b > 0x7E for b in value):
        raise MalformedManifest(f"{name} contains a byte outside printable ASCII")
    return value.decode("ascii")


def _check_value(tag: int, value: bytes) -> None:
    name, kind, _ = FIELDS[tag]
    fixed = {"u32": 4, "u64": 8, "pct": 1, "dtype": 1, "quant": 8, "digest": 32}
    if kind in fixed and len(value) != fixed[kind]:
        raise MalformedManifest(f"{name} must be {fixed[kind]} bytes, got {len(value)}")
    if kind == "id":
        s = _ascii(value, tag, 64)
        if not _ID_RE.fullmatch(s):
            raise MalformedManifest(f"{name} {s!r} has characters outside A-Z a-z 0-9 . _ - : +")
    elif kind == "class":
        s = _ascii(value, tag, 32)
        if not _CLASS_RE.fullmatch(s):
            raise MalformedManifest(f"{name} {s!r} has characters outside a-z 0-9 _ -")
    elif kind == "str255":
        _ascii(value, tag, 255)
    elif kind == "str32":
        _ascii(value, tag, 32)
    elif kind == "pct":
        if value[0] > 100:
            raise MalformedManifest(f"{name} is {value[0]}, above 100")
    elif kind == "dtype":
        if value[0] not in DType._value2member_map_:
            raise MalformedManifest(f"{name} {value[0]} is not a known dtype code (1..4)")
    elif kind == "quant":
        scale, _zp = struct.unpack("<fi", value)
        if not (math.isfinite(scale) and scale > 0):
            raise MalformedManifest(f"{name} scale {scale} must be finite and > 0")
    elif kind == "shape":
        if len(value) % 4 or not 4 <= len(value) <= 24:
            raise MalformedManifest(f"{name} must hold 1..6 u32 dimensions, got {len(value)} bytes")
        if any(d == 0 for d in struct.unpack(f"<{len(value) // 4}I", value)):
            raise MalformedManifest(f"{name} has a zero dimension")


def _validate_fields(fields: dict[int, bytes]) -> None:
    for tag, value in fields.items():
        if len(value) > MAX_MANIFEST_LEN - 4:
            raise MalformedManifest(f"manifest field 0x{tag:04x} is {len(value)} bytes, too long")
        if tag in FIELDS:
            _check_value(tag, value)
        elif tag & CRITICAL_BIT:
            raise MalformedManifest(f"unknown critical manifest field 0x{tag:04x}")
    for tag, (name, _, required) in FIELDS.items():
        if required and tag not in fields:
            raise MalformedManifest(f"required manifest field {name} (0x{tag:04x}) is missing")
    created = struct.unpack("<Q", fields[0x0005])[0]
    if 0x0006 in fields and struct.unpack("<Q", fields[0x0006])[0] <= created:
        raise MalformedManifest("expires must be later than created")


def _to_fields(m: Manifest) -> dict[int, bytes]:
    def s(v: str) -> bytes:
        try:
            return v.encode("ascii")
        except UnicodeEncodeError as e:
            raise MalformedManifest(f"non-ASCII text in manifest: {v!r}") from e

    def u32(v: int, name: str) -> bytes:
        if not 0 <= v <= 0xFFFFFFFF:
            raise MalformedManifest(f"{name} {v} does not fit in 32 bits")
        return struct.pack("<I", v)

    def u64(v: int, name: str) -> bytes:
        if not 0 <= v <= 0xFFFFFFFFFFFFFFFF:
            raise MalformedManifest(f"{name} {v} does not fit in 64 bits")
        return struct.pack("<Q", v)

    def shape(t: TensorSpec, name: str) -> bytes:
        if not 1 <= len(t.shape) <= 6:
            raise MalformedManifest(f"{name} rank {len(t.shape)} is outside 1..6")
        return b"".join(u32(d, name) for d in t.shape)

    def quant(t: TensorSpec, name: str) -> bytes:
        if not -(2**31) <= t.zero_point < 2**31:
            raise MalformedManifest(f"{name} zero point {t.zero_point} does not fit in 32 bits")
        return struct.pack("<fi", t.scale, t.zero_point)

    d, mc, p = m.deployment, m.model, m.provenance
    if not 0 <= d.min_battery_pct <= 255:
        raise MalformedManifest(f"min_battery_pct {d.min_battery_pct} is outside 0..100")
    f: dict[int, bytes] = {
        0x0001: s(m.bundle_id),
        0x0002: s(m.hardware_class),
        0x0004: u32(m.security_counter, "security_counter"),
        0x0005: u64(m.created, "created"),
        0x0011: bytes([d.min_battery_pct]),
        0x0012: u32(d.max_latency_ms, "max_latency_ms"),
        0x0013: u32(d.peak_ram_bytes, "peak_ram_bytes"),
        0x0020: shape(mc.input, "input_shape"),
        0x0021: bytes([int(mc.input.dtype)]),
        0x0022: quant(mc.input, "input_quant"),
        0x0023: shape(mc.output, "output_shape"),
        0x0024: bytes([int(mc.output.dtype)]),
        0x0025: quant(mc.output, "output_quant"),
        0x0026: s(mc.feature_extractor_version),
        0x0027: u32(mc.arena_bytes, "arena_bytes"),
        0x0032: p.validation_report_digest,
    }
    if m.device_scope is not None:
        f[0x0003] = s(m.device_scope)
    if m.expires is not None:
        f[0x0006] = u64(m.expires, "expires")
    if m.rollback_target is not None:
        f[0x0007] = s(m.rollback_target)
    if d.target_environments:
        if any("," in e or not e for e in d.target_environments):
            raise MalformedManifest("target environment names must be non-empty and contain no comma")
        f[0x0010] = s(",".join(d.target_environments))
    if p.dataset_digest is not None:
        f[0x0030] = p.dataset_digest
    if p.training_run_id is not None:
        f[0x0031] = s(p.training_run_id)
    for tag, value in m.extra:
        if tag in FIELDS or tag & CRITICAL_BIT:
            raise MalformedManifest(f"extra field 0x{tag:04x} is a known or critical tag")
        f[tag] = value
    return f


def _from_fields(f: dict[int, bytes]) -> Manifest:
    def s(tag: int) -> str | None:
        return f[tag].decode("ascii") if tag in f else None

    def u32(tag: int) -> int:
        return struct.unpack("<I", f[tag])[0]

    def tensor(shape_tag: int, dtype_tag: int, quant_tag: int) -> TensorSpec:
        raw = f[shape_tag]
        scale, zp = struct.unpack("<fi", f[quant_tag])
        return TensorSpec(
            shape=struct.unpack(f"<{len(raw) // 4}I", raw), dtype=DType(f[dtype_tag][0]), scale=scale, zero_point=zp
        )

    envs = s(0x0010)
    return Manifest(
        bundle_id=s(0x0001) or "",
        hardware_class=s(0x0002) or "",
        device_scope=s(0x0003),
        security_counter=u32(0x0004),
        created=struct.unpack("<Q", f[0x0005])[0],
        expires=struct.unpack("<Q", f[0x0006])[0] if 0x0006 in f else None,
        rollback_target=s(0x0007),
        deployment=Deployment(
            min_battery_pct=f[0x0011][0],
            max_latency_ms=u32(0x0012),
            peak_ram_bytes=u32(0x0013),
            target_environments=tuple(envs.split(",")) if envs else (),
        ),
        model=ModelContract(
            input=tensor(0x0020, 0x0021, 0x0022),
            output=tensor(0x0023, 0x0024, 0x0025),
            feature_extractor_version=s(0x0026) or "",
            arena_bytes=u32(0x0027),
        ),
        provenance=Provenance(
            validation_report_digest=f[0x0032],
            dataset_digest=f.get(0x0030),
            training_run_id=s(0x0031),
        ),
        extra=tuple((t, v) for t, v in sorted(f.items()) if t not in FIELDS),
    )
