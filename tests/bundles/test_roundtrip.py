"""Build -> parse round trips over generated manifests and payloads."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyfleet.bundles import (
    ComponentType,
    Deployment,
    DType,
    Manifest,
    ModelContract,
    Provenance,
    TensorSpec,
    TrustedKeys,
    VerifyPolicy,
    build_bundle,
    generate_private_key,
    parse_bundle,
    verify_bundle,
)
from tinyfleet.bundles.errors import OutOfRange

KEY = generate_private_key()
TRUST = TrustedKeys.of([KEY.public_key()])

ids = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:+-", min_size=1, max_size=64)
classes = st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=32)
u32 = st.integers(0, 2**32 - 1)
f32 = st.floats(min_value=1e-6, max_value=1e3, allow_nan=False, allow_infinity=False).map(
    lambda x: struct.unpack("<f", struct.pack("<f", x))[0]
)
tensors = st.builds(
    TensorSpec,
    shape=st.lists(st.integers(1, 4096), min_size=1, max_size=6).map(tuple),
    dtype=st.sampled_from(list(DType)),
    scale=f32,
    zero_point=st.integers(-(2**31), 2**31 - 1),
)
envs = st.lists(st.text("abcdefghijklmnopqrstuvwxyz:-_0123456789", min_size=1, max_size=20), max_size=5).map(tuple)
digests = st.binary(min_size=32, max_size=32)
versions = st.text("0123456789.abcdefghijklmnopqrstuvwxyz-+", min_size=1, max_size=32)


@st.composite
def manifests(draw: st.DrawFn) -> Manifest:
    created = draw(st.integers(0, 2**40))
    return Manifest(
        bundle_id=draw(ids),
        hardware_class=draw(classes),
        security_counter=draw(u32),
        created=created,
        expires=draw(st.none() | st.integers(created + 1, 2**41)),
        device_scope=draw(st.none() | ids),
        rollback_target=draw(st.none() | ids),
        deployment=Deployment(draw(st.integers(0, 100)), draw(u32), draw(u32), draw(envs)),
        model=ModelContract(draw(tensors), draw(tensors), draw(versions), draw(u32)),
        provenance=Provenance(draw(digests), draw(st.none() | digests), draw(st.none() | ids)),
        extra=tuple(
            sorted(draw(st.dictionaries(st.integers(0x0040, 0x7FFF), st.binary(max_size=40), max_size=3)).items())
        ),
    )


@settings(max_examples=150, deadline=None)
@given(manifests())
def test_manifest_encoding_round_trips(m: Manifest) -> None:
    assert Manifest.decode(m.encode()) == m


@settings(max_examples=40, deadline=None)
@given(
    manifests(),
    st.lists(st.binary(min_size=1, max_size=3000), min_size=5, max_size=5),
    st.lists(versions, min_size=5, max_size=5),
)
def test_bundle_round_trips(m: Manifest, payloads: list[bytes], vers: list[str]) -> None:
    comps = {t: (vers[i], payloads[i]) for i, t in enumerate(ComponentType)}
    data = build_bundle(m, comps, KEY)
    b = parse_bundle(data)
    assert b.manifest == m
    assert {c.type: (c.version, b.payload(c)) for c in b.components} == comps
    assert all(c.offset % 16 == 0 for c in b.components)
    assert verify_bundle(data, TRUST, VerifyPolicy(now=m.created)).manifest == m
    assert build_bundle(m, comps, KEY) == data  # deterministic signatures: rebuilding is byte-identical


def test_firmware_at_a_fixed_offset() -> None:
    from tests.vectors.generate import KEY_A, components, manifest

    m = manifest("stm32l4")
    data = build_bundle(m, components("stm32l4"), KEY_A, firmware_offset=8192)
    b = verify_bundle(data, TrustedKeys.of([KEY_A.public_key()]), VerifyPolicy(now=m.created))
    fw = b.component(ComponentType.FIRMWARE)
    assert fw.offset == 8192
    assert min(c.offset for c in b.components) == 8192  # the others follow it
    assert not any(data[b.header.payload_offset : 8192])  # the gap is zero
    with pytest.raises(OutOfRange, match="firmware_offset 100 must be a multiple of 16"):
        build_bundle(m, components("stm32l4"), KEY_A, firmware_offset=100)
    with pytest.raises(OutOfRange, match="at or after the metadata's end"):
        build_bundle(m, components("stm32l4"), KEY_A, firmware_offset=512)
