"""Generate the bundle test vectors shared by the Python and C++ implementations.

    .venv/bin/python tests/vectors/generate.py          # rewrites tests/vectors/ (deterministic)
    .venv/bin/python tests/vectors/generate.py --check  # exit 1 if the committed files differ

Keys derive from fixed seeds and signatures are RFC 6979, so the output is byte-identical on every run.
Payloads are small synthetic bytes: the vectors test the container, not the model. `index.json` lists every
file with the verification context (trusted keys, hardware class, device id, stored counter, clock) and the
verdict every implementation must reach: "ok" or an error name from docs/bundle-format.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
from dataclasses import replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from tinyfleet.bundles import (
    Calibration,
    ChannelCalibration,
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
    key_id,
)
from tinyfleet.bundles.format import ENTRY_LEN, HEADER_LEN, SignatureBlock, parse_meta
from tinyfleet.bundles.signing import P256_ORDER, public_der, public_pem, sign

HERE = Path(__file__).resolve().parent
CREATED = 1_767_225_600  # 2026-01-01T00:00:00Z
EXPIRES = 1_830_297_600  # 2028-01-01T00:00:00Z
NOW = 1_790_000_000  # the verifier's clock for every vector (2026-09-21)


def derive_key(seed: str) -> ec.EllipticCurvePrivateKey:
    scalar = int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big")
    return ec.derive_private_key(scalar, ec.SECP256R1())


KEY_A = derive_key("tinyfleet test vector key A")
KEY_B = derive_key("tinyfleet test vector key B (rotation)")
KEY_UNTRUSTED = derive_key("tinyfleet test vector key U (never trusted)")


def manifest(hw: str, **kw: object) -> Manifest:
    m = Manifest(
        bundle_id=f"vib-1.0.0-{hw}",
        hardware_class=hw,
        security_counter=5,
        created=CREATED,
        expires=EXPIRES,
        rollback_target=f"vib-0.9.0-{hw}",
        deployment=Deployment(20, 40, 48_000, ("site:plant-a", "temp:warm")),
        model=ModelContract(
            input=TensorSpec((1, 64, 3), DType.INT8, 0.0625, -4),
            output=TensorSpec((1, 4), DType.INT8, 0.00390625, -128),
            feature_extractor_version="vib-window-v1",
            arena_bytes=21_504,
        ),
        provenance=Provenance(
            validation_report_digest=hashlib.sha256(b"validation report").digest(),
            dataset_digest=hashlib.sha256(b"dataset").digest(),
            training_run_id="run-2026-01-01",
        ),
    )
    return replace(m, **kw)


def components(hw: str, fw_size: int = 3000) -> dict[ComponentType, tuple[str, bytes]]:
    fw = hashlib.shake_256(f"firmware {hw}".encode()).digest(fw_size)
    model = hashlib.shake_256(f"model {hw}".encode()).digest(1500)
    th = Thresholds(
        (
            ClassThreshold("normal", -60, False),
            ClassThreshold("imbalance", 0, True),
            ClassThreshold("bearing", 0, True),
            ClassThreshold("misalign", 10, True),
        )
    )
    cal = Calibration(1000, tuple(ChannelCalibration(12 * i, 65536 + 512 * i, 0, 2560) for i in range(3)))
    hv = HealthVectors(192, 4, tuple((bytes([i]) * 192, bytes([i, 255 - i, 0, 1])) for i in range(3)))
    return {
        ComponentType.FIRMWARE: ("2.3.1", fw),
        ComponentType.MODEL: ("1.0.0", model),
        ComponentType.THRESHOLDS: ("1.0.0", th.encode()),
        ComponentType.CALIBRATION: ("cal-2026-01", cal.encode()),
        ComponentType.HEALTH_VECTORS: ("1.0.0", hv.encode()),
    }


def valid(hw: str, key: ec.EllipticCurvePrivateKey = KEY_A, **kw: object) -> bytes:
    return build_bundle(manifest(hw, **kw), components(hw), key)


def resign(data: bytes | bytearray, key: ec.EllipticCurvePrivateKey = KEY_A) -> bytes:
    """Recompute the signature over a (possibly corrupted) signed region, as an attacker with the key could."""
    buf = bytearray(data)
    mlen = struct.unpack_from("<H", buf, 12)[0]
    count = buf[14]
    t = HEADER_LEN + mlen + ENTRY_LEN * count
    sig = SignatureBlock(1, key_id(key.public_key()), sign(key, bytes(buf[:t])))
    buf[t : t + 96] = sig.encode()
    return bytes(buf)


def with_signature(data: bytes, der: bytes) -> bytes:
    """`data` with another signature in its block (same key id), nothing else changed."""
    meta = parse_meta(data)
    t = meta.header.signed_len
    block = SignatureBlock(meta.signature.algorithm, meta.signature.key_id, der).encode()
    return data[:t] + block + data[t + 96 :]


def sign_with_nonce(key: ec.EllipticCurvePrivateKey, data: bytes, k: int) -> bytes:
    """ECDSA over SHA-256(data) with a chosen nonce k (low-s): a second valid signature of the same bytes,
    as a signer with random nonces, or another ECDSA library, would make. (k G).x comes from `cryptography`."""
    z = int.from_bytes(hashlib.sha256(data).digest(), "big")
    d = key.private_numbers().private_value
    r = ec.derive_private_key(k, ec.SECP256R1()).public_key().public_numbers().x % P256_ORDER
    s = pow(k, -1, P256_ORDER) * (z + r * d) % P256_ORDER
    return encode_dss_signature(r, min(s, P256_ORDER - s))


def entry_pos(data: bytes, index: int) -> int:
    mlen = struct.unpack_from("<H", data, 12)[0]
    return HEADER_LEN + mlen + ENTRY_LEN * index


def patch(data: bytes, pos: int, raw: bytes) -> bytearray:
    buf = bytearray(data)
    buf[pos : pos + len(raw)] = raw
    return buf


def manifest_bytes_with(fields: list[tuple[int, bytes]]) -> bytes:
    return b"".join(struct.pack("<HH", t, len(v)) + v for t, v in fields)


def rebuild_with_manifest(base: bytes, raw_manifest: bytes, key: ec.EllipticCurvePrivateKey = KEY_A) -> bytes:
    """Same components as `base`, but with a hand-made manifest (for structurally invalid ones)."""
    meta = parse_meta(base)
    count = len(meta.components)
    poff = (HEADER_LEN + len(raw_manifest) + ENTRY_LEN * count + 96 + 15) & ~15
    shift = poff - meta.header.payload_offset
    entries = b""
    for c in meta.components:
        entries += replace(c, offset=c.offset + shift).encode()
    header = bytearray(base[:HEADER_LEN])
    struct.pack_into("<H", header, 12, len(raw_manifest))
    struct.pack_into("<II", header, 20, poff, meta.header.total_len + shift)
    head = bytes(header) + raw_manifest + entries
    out = bytearray(head + bytes(poff - len(head)) + base[meta.header.payload_offset :])
    return resign(out, key)


def manifest_fields(data: bytes) -> list[tuple[int, bytes]]:
    mlen = struct.unpack_from("<H", data, 12)[0]
    raw, pos, out = data[HEADER_LEN : HEADER_LEN + mlen], 0, []
    while pos < len(raw):
        tag, n = struct.unpack_from("<HH", raw, pos)
        out.append((tag, raw[pos + 4 : pos + 4 + n]))
        pos += 4 + n
    return out


def vectors() -> list[dict[str, object]]:
    base = valid("stm32l4")
    v: list[dict[str, object]] = []

    def add(name: str, data: bytes | bytearray, expect: str, description: str, **ctx: object) -> None:
        entry: dict[str, object] = {
            "file": f"{name}.tfb",
            "expect": expect,
            "hardware_class": ctx.get("hardware_class", "stm32l4"),
            "device_id": ctx.get("device_id", "dev-0001"),
            "min_counter": ctx.get("min_counter", 3),
            "now": ctx.get("now", NOW),
            "trusted_keys": ctx.get("trusted_keys", [key_id(KEY_A.public_key()).hex()]),
            "description": description,
        }
        if "same_content_as" in ctx:
            entry["same_content_as"] = ctx["same_content_as"]
        v.append({**entry, "_data": bytes(data)})

    kb = key_id(KEY_B.public_key()).hex()
    ka = key_id(KEY_A.public_key()).hex()
    add("valid-stm32l4", base, "ok", "a valid bundle for stm32l4")
    add("valid-esp32s3", valid("esp32s3"), "ok", "a valid bundle for esp32s3", hardware_class="esp32s3")
    add("valid-device-scoped", valid("stm32l4", device_scope="dev-0001", bundle_id="cal-dev-0001"), "ok",
        "per-device calibration bundle installed on its own device")
    add("valid-rotated-key", valid("stm32l4", key=KEY_B), "ok", "signed by the new key while both are trusted",
        trusted_keys=[ka, kb])
    add("valid-unknown-optional-field", valid("stm32l4", extra=((0x0100, b"future"),)), "ok",
        "an unknown non-critical manifest field is skipped")
    comps32 = components("stm32l4")
    comps32[ComponentType.FIRMWARE] = ("2.3.1+build.20260101.abcdef01234", comps32[ComponentType.FIRMWARE][1])
    assert len(comps32[ComponentType.FIRMWARE][0]) == 32
    add("valid-version-32-chars", build_bundle(manifest("stm32l4"), comps32, KEY_A), "ok",
        "a component version filling all 32 bytes of its field, no NUL")
    add("valid-firmware-offset", build_bundle(manifest("stm32l4"), components("stm32l4"), KEY_A, firmware_offset=8192),
        "ok", "firmware at a fixed offset (8192) after a zero gap, as built for stm32l4's execute-in-place port")
    add("valid-counter-equal", base, "ok", "counter equal to the device's stored counter is accepted", min_counter=5)
    meta = parse_meta(base)
    t = meta.header.signed_len
    add("valid-same-content-resigned", with_signature(base, sign_with_nonce(KEY_A, base[:t], k=0x5EED)), "ok",
        "valid-stm32l4 with another valid signature by the same key (another nonce): same content, another "
        "digest; a device running valid-stm32l4 is UpToDate with it", same_content_as="valid-stm32l4.tfb")

    add("bad-magic", patch(base, 0, b"\x89TFX"), "BadMagic", "first bytes are not the magic")
    add("short-bad-magic", b"\x89TX", "BadMagic", "3 bytes that already differ from the magic (found by fuzzing)")
    add("short-good-magic", base[:5], "Truncated", "5 bytes of a valid magic, then the end")
    add("not-a-bundle", b"PK\x03\x04 this is a zip file, not a bundle", "BadMagic", "some other file")
    add("unsupported-version", patch(base, 8, struct.pack("<H", 2)), "UnsupportedVersion", "format_version 2")
    add("malformed-header-reserved", patch(base, 28, b"\x01"), "MalformedHeader", "reserved header bytes non-zero")
    add("malformed-header-payload-offset", patch(base, 20, struct.pack("<I", 4096)), "MalformedHeader",
        "payload_offset disagrees with the lengths")
    add("truncated-header", base[:20], "Truncated", "file ends inside the header")
    add("truncated-metadata", base[:200], "Truncated", "file ends inside the manifest")
    add("truncated-payload", base[: len(base) - 100], "Truncated", "file ends inside the last payload")
    add("trailing-bytes", base + b"\x00" * 16, "OutOfRange", "file longer than total_len")
    add("oversize-total", patch(base, 24, struct.pack("<I", 64 * 1024 * 1024 + 1)), "Oversize",
        "total_len above 64 MiB")
    add("oversize-manifest", patch(base, 12, struct.pack("<H", 5000)), "Oversize", "manifest_len above 4096")
    e0 = entry_pos(base, 0)
    add("out-of-range-component", resign(patch(base, e0 + 8, struct.pack("<I", 10_000_000))), "OutOfRange",
        "a component extends past total_len (re-signed)")
    add("unaligned-component", resign(patch(base, e0 + 4, struct.pack("<I", parse_meta(base).components[0].offset
        + 1))), "OutOfRange", "a component offset not 16-byte aligned (re-signed)")
    fields = manifest_fields(base)
    swapped = fields[:]
    swapped[0], swapped[1] = swapped[1], swapped[0]
    add("malformed-manifest-order", rebuild_with_manifest(base, manifest_bytes_with(swapped)), "MalformedManifest",
        "manifest tags out of order (re-signed)")
    add("malformed-manifest-critical", rebuild_with_manifest(base, manifest_bytes_with(fields + [(0x8001, b"x")])),
        "MalformedManifest", "unknown critical manifest field (re-signed)")
    add("malformed-manifest-missing-field",
        rebuild_with_manifest(base, manifest_bytes_with([f for f in fields if f[0] != 0x0004])),
        "MalformedManifest", "required security_counter missing (re-signed)")
    add("malformed-table-type", resign(patch(base, e0, b"\x09")), "MalformedTable",
        "unknown component type 9 (re-signed)")
    e1 = entry_pos(base, 1)
    add("overlapping-components", resign(patch(base, e1 + 4, struct.pack("<I", parse_meta(base).components[0].offset
        + 16))), "OverlappingComponents", "model payload overlaps firmware (re-signed)")
    add("duplicate-component", resign(patch(base, e1, b"\x01")), "DuplicateComponent",
        "firmware listed twice (re-signed)")
    four = build_bundle(manifest("stm32l4"), components("stm32l4"), KEY_A)
    add("missing-component", _drop_last_component(four), "MissingComponent", "health vectors absent (re-signed)")
    add("unknown-key-id", valid("stm32l4", key=KEY_UNTRUSTED), "UnknownKeyId", "signed by a key nobody trusts")
    add("retired-key", valid("stm32l4", key=KEY_A), "UnknownKeyId", "signed by key A after rotation to key B only",
        trusted_keys=[kb])
    t = entry_pos(base, 5)
    sig_byte = t + 12 + 10
    add("bad-signature", patch(base, sig_byte, bytes([base[sig_byte] ^ 0x01])), "BadSignature",
        "one bit of the signature flipped")
    tampered = bytearray(base)
    tampered[HEADER_LEN + 4] ^= 0x01  # inside bundle_id: 'v' -> 'w', still a valid id
    add("tampered-manifest", bytes(tampered), "BadSignature", "manifest changed after signing")
    add("bad-signature-algorithm", patch(base, t, b"\x02"), "BadSignature", "unsupported signature algorithm")
    add("wrong-hardware-class", base, "WrongHardwareClass", "stm32l4 bundle offered to an esp32s3",
        hardware_class="esp32s3")
    add("wrong-device", valid("stm32l4", device_scope="dev-0002", bundle_id="cal-dev-0002"), "WrongDevice",
        "per-device bundle offered to another device")
    add("expired", base, "Expired", "verifier clock past expires", now=EXPIRES)
    add("counter-too-low", base, "CounterTooLow", "downgrade: device already at counter 6", min_counter=6)
    add("nonzero-prefix-padding", patch(base, t + 96, b"\x01"), "BadSignature",
        "a non-zero byte in the padding between the signature block and payload_offset")
    first = min(meta.components, key=lambda c: c.offset)
    assert first.end % 16, "the vector needs a gap after the first payload"
    add("nonzero-payload-gap", patch(base, first.end, b"\x01"), "OutOfRange",
        "a non-zero byte in the gap between two payloads")
    r, s_low = decode_dss_signature(meta.signature.signature)
    add("high-s-signature", with_signature(base, encode_dss_signature(r, P256_ORDER - s_low)), "BadSignature",
        "the high-s twin (r, n - s) of the valid signature: verifies in plain ECDSA, refused as non-canonical")
    last = parse_meta(base).components[-1]
    add("hash-mismatch", patch(base, last.offset + 3, bytes([base[last.offset + 3] ^ 0xFF])), "HashMismatch",
        "one payload byte changed")
    return v


def _drop_last_component(data: bytes) -> bytes:
    """Rewrite a bundle with its last table entry (and that payload) removed, then re-sign it."""
    meta = parse_meta(data)
    keep = [c for c in meta.components if c.type != ComponentType.HEALTH_VECTORS]
    mlen = meta.header.manifest_len
    poff = (HEADER_LEN + mlen + ENTRY_LEN * len(keep) + 96 + 15) & ~15
    shift = poff - meta.header.payload_offset
    moved = [replace(c, offset=c.offset + shift) for c in keep]
    total = max(c.end for c in moved)
    header = bytearray(data[:HEADER_LEN])
    header[14] = len(keep)
    struct.pack_into("<II", header, 20, poff, total)
    head = bytes(header) + data[HEADER_LEN : HEADER_LEN + mlen] + b"".join(c.encode() for c in moved)
    out = bytearray(total)
    out[: len(head)] = head
    for old, new in zip(keep, moved, strict=True):
        out[new.offset : new.end] = data[old.offset : old.end]
    return resign(out)


def render() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    keys = []
    for name, k in (("a", KEY_A), ("b", KEY_B), ("untrusted", KEY_UNTRUSTED)):
        files[f"keys/{name}.pub.pem"] = public_pem(k.public_key())
        files[f"keys/{name}.pub.der"] = public_der(k.public_key())
        kid = key_id(k.public_key()).hex()
        keys.append({"key_id": kid, "pem": f"keys/{name}.pub.pem", "der": f"keys/{name}.pub.der"})
    index = []
    for entry in vectors():
        data = entry.pop("_data")
        assert isinstance(data, bytes)
        files[str(entry["file"])] = data
        index.append(entry)
    files["index.json"] = (json.dumps({"format": 1, "keys": keys, "vectors": index}, indent=2) + "\n").encode()
    return files


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed files instead of writing")
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args()
    files = render()
    if args.check:
        stale = [n for n, b in files.items() if not (args.out / n).is_file() or (args.out / n).read_bytes() != b]
        for n in stale:
            print(f"differs: {n}", file=sys.stderr)
        return 1 if stale else 0
    for name, data in files.items():
        path = args.out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    print(f"wrote {len(files)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
