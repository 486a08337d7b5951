"""One bundle, one encoding: no byte outside the signed region can change without the bundle being refused.

The sweep mutates every byte nothing authenticates (the signature block, the zero padding after it up to
payload_offset, the gaps between and after payloads) and re-encodes the signature in every other valid BER/DER
shape (the ECDSA high-s twin, non-minimal integers, long-form lengths). Each mutant must be refused, with the
same verdict, by the Python verifier (whole file and streamed) and by the device's C++ StreamVerifier (through
the binding). Before the encoding was made canonical, the padding, gap and high-s mutants were accepted: each
was the same content under a new bundle digest, which a device would have installed again.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from tests.bundles.verdicts import stream_verdict, verdict
from tests.vectors.generate import KEY_A, KEY_B, NOW, build_bundle, components, manifest, valid
from tinyfleet import _agent
from tinyfleet.bundles import TrustedKeys, VerifyPolicy
from tinyfleet.bundles.format import SIG_BLOCK_LEN, SignatureBlock, content_digest, parse_meta
from tinyfleet.bundles.signing import P256_ORDER, public_der, sign

TRUST = TrustedKeys.of([KEY_A.public_key(), KEY_B.public_key()])
TRUST_DER = [public_der(KEY_A.public_key()), public_der(KEY_B.public_key())]
POLICY = VerifyPolicy("stm32l4", "dev-0001", 0, NOW)
BASE = valid("stm32l4")  # payloads packed: 16-byte alignment gaps only
SPREAD = build_bundle(manifest("stm32l4"), components("stm32l4"), KEY_A, firmware_offset=8192)  # a 7 KiB gap


def python_verdict(data: bytes) -> str:
    return verdict(data, TRUST, POLICY)


def python_stream_verdict(data: bytes, chunk: int) -> str:
    return stream_verdict(data, chunk, TRUST, POLICY)


def device_verdict(data: bytes, chunk: int = 4096) -> str:
    v = _agent.verify_bundle(data, TRUST_DER, POLICY.hardware_class, POLICY.device_id, POLICY.min_counter,
                             NOW, chunk)  # fmt: skip
    return "ok" if v == "Ok" else v


def verdicts(data: bytes) -> set[str]:
    """Every verifier's verdict, chunked several ways (a mutant's bytes may arrive split anywhere)."""
    out = {python_verdict(data)}
    for chunk in (1 << 20, 97, 16):
        out |= {python_stream_verdict(data, chunk), device_verdict(data, chunk)}
    return out


def unauthenticated_ranges(data: bytes) -> list[tuple[str, int, int]]:
    """[start, end) of every region the signature does not cover, by what it is."""
    meta = parse_meta(data)
    t, poff, total = meta.header.signed_len, meta.header.payload_offset, meta.header.total_len
    out = [("signature block", t, t + SIG_BLOCK_LEN), ("prefix padding", t + SIG_BLOCK_LEN, poff)]
    at = poff
    for c in sorted(meta.components, key=lambda c: c.offset):
        out.append(("payload gap", at, c.offset))
        at = c.end
    out.append(("payload gap", at, total))
    return [r for r in out if r[1] < r[2]]


def sampled(start: int, end: int) -> Iterator[int]:
    """Every byte of a short range; the edges and a stride through a long one (the 7 KiB gap)."""
    if end - start <= 64:
        yield from range(start, end)
        return
    yield from range(start, start + 16)
    yield from range(start + 16, end - 16, 61)
    yield from range(end - 16, end)


def byte_mutants(data: bytes) -> Iterator[tuple[str, bytes]]:
    for what, start, end in unauthenticated_ranges(data):
        for pos in sampled(start, end):
            for xor in (0x01, 0x80):
                buf = bytearray(data)
                buf[pos] ^= xor
                yield f"{what} byte {pos} ^ {xor:#04x}", bytes(buf)


def with_signature(data: bytes, der: bytes) -> bytes:
    """`data` with its signature replaced by `der` (same key id): the signature block re-packed, no re-signing."""
    meta = parse_meta(data)
    t = meta.header.signed_len
    block = SignatureBlock(meta.signature.algorithm, meta.signature.key_id, der).encode()
    return data[:t] + block + data[t + SIG_BLOCK_LEN :]


def der_int(value: bytes) -> bytes:
    return b"\x02" + bytes([len(value)]) + value


def signature_twins(data: bytes) -> Iterator[tuple[str, bytes]]:
    """The same (r, s) pair, or its high-s twin, in every other encoding a lenient ECDSA verifier accepts."""
    der = parse_meta(data).signature.signature
    r, s = decode_dss_signature(der)
    yield "high-s twin (r, n - s)", encode_dss_signature(r, P256_ORDER - s)
    rb, sb = (x.to_bytes((x.bit_length() + 8) // 8, "big") for x in (r, s))  # minimal, sign bit clear
    body = der_int(rb) + der_int(sb)
    yield "r with a needless leading zero", b"\x30" + bytes([len(body) + 1]) + der_int(b"\x00" + rb) + der_int(sb)
    yield "s with a needless leading zero", b"\x30" + bytes([len(body) + 1]) + der_int(rb) + der_int(b"\x00" + sb)
    yield "long-form SEQUENCE length", b"\x30\x81" + bytes([len(body)]) + body
    long_r = b"\x02\x81" + bytes([len(rb)]) + rb
    yield "r as a long-form INTEGER", b"\x30" + bytes([len(body) + 1]) + long_r + der_int(sb)
    yield "trailing byte inside the SEQUENCE", b"\x30" + bytes([len(body) + 1]) + body + b"\x00"


def test_unmutated_bundles_are_accepted_by_every_verifier() -> None:
    for data in (BASE, SPREAD):
        assert verdicts(data) == {"ok"}


@pytest.mark.parametrize("base", [BASE, SPREAD], ids=["packed", "firmware-offset"])
def test_every_unauthenticated_byte_is_checked_by_both_verifiers(base: bytes) -> None:
    accepted, disagree, count = [], [], 0
    for name, data in byte_mutants(base):
        count += 1
        v = verdicts(data)
        if "ok" in v:
            accepted.append(name)
        elif len(v) != 1:
            disagree.append((name, sorted(v)))
    assert count > 100
    assert not accepted, f"{len(accepted)} of {count} mutants accepted, e.g. {accepted[:5]}"
    assert not disagree, f"verifiers disagree: {disagree[:5]}"


@pytest.mark.parametrize("base", [BASE, SPREAD], ids=["packed", "firmware-offset"])
def test_nonzero_padding_and_gap_bytes_have_their_verdicts(base: bytes) -> None:
    expect = {"signature block": None, "prefix padding": "BadSignature", "payload gap": "OutOfRange"}
    for what, start, end in unauthenticated_ranges(base):
        if expect[what] is None:
            continue
        for pos in (start, end - 1):
            buf = bytearray(base)
            buf[pos] = 0xA5
            assert verdicts(bytes(buf)) == {expect[what]}, (what, pos)


@pytest.mark.parametrize("base", [BASE, SPREAD], ids=["packed", "firmware-offset"])
def test_every_other_encoding_of_the_signature_is_refused(base: bytes) -> None:
    for name, der in signature_twins(base):
        assert verdicts(with_signature(base, der)) == {"BadSignature"}, name


def test_the_signer_always_produces_low_s() -> None:
    for i in range(200):
        _, s = decode_dss_signature(sign(KEY_A, f"message {i}".encode()))
        assert 1 <= s <= P256_ORDER // 2


def test_content_digest_names_the_signed_region_whatever_the_signature() -> None:
    resigned = valid("stm32l4", key=KEY_B)  # same signed region, another key's signature block
    assert resigned != BASE
    assert parse_meta(resigned).digest != parse_meta(BASE).digest
    assert content_digest(resigned) == content_digest(BASE) == parse_meta(BASE).content_digest
    assert verdicts(resigned) == {"ok"}
    assert content_digest(valid("stm32l4", security_counter=6)) != content_digest(BASE)
