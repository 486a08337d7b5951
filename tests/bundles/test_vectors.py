"""Every committed vector gets exactly its expected verdict, whole-file and streamed in any chunking."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyfleet.bundles import BundleError, StreamVerifier, bundle_digest, content_digest, verify_bundle
from tinyfleet.bundles.errors import ALL_ERRORS

from .conftest import VECTORS, Vector, load_vectors

ALL = load_vectors()


def verdict_whole(v: Vector) -> str:
    try:
        verify_bundle(v.data, v.keys, v.policy)
    except BundleError as e:
        return e.code
    return "ok"


def verdict_stream(v: Vector, sizes: list[int]) -> str:
    sv = StreamVerifier(v.keys, v.policy)
    pos, i = 0, 0
    try:
        while pos < len(v.data):
            n = sizes[i % len(sizes)]
            sv.feed(v.data[pos : pos + n])
            pos, i = pos + n, i + 1
        sv.finish()
    except BundleError as e:
        return e.code
    return "ok"


@pytest.mark.parametrize("v", ALL, ids=[v.name for v in ALL])
def test_whole_file_verdict(v: Vector) -> None:
    assert verdict_whole(v) == v.expect


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(ALL), st.lists(st.integers(1, 5000), min_size=1, max_size=20))
def test_streaming_agrees_with_whole_file(v: Vector, sizes: list[int]) -> None:
    assert verdict_stream(v, sizes) == verdict_whole(v)


def test_vectors_cover_every_error_and_both_hardware_classes() -> None:
    expected = {v.expect for v in ALL}
    assert {e.code for e in ALL_ERRORS} <= expected
    assert {v.policy.hardware_class for v in ALL if v.expect == "ok"} >= {"esp32s3", "stm32l4"}
    assert sum(v.expect != "ok" for v in ALL) >= 15


def test_committed_vectors_match_generator() -> None:
    r = subprocess.run([sys.executable, str(VECTORS / "generate.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_bad_last_payload_plus_trailing_bytes_is_hash_mismatch_in_any_chunking() -> None:
    v = next(v for v in ALL if v.name == "hash-mismatch.tfb")
    data = v.data + b"\x00" * 32
    whole = Vector(v.name, data, v.expect, v.keys, v.policy)
    assert verdict_whole(whole) == "HashMismatch"
    for sizes in ([len(data)], [4096], [7, 4096], [1]):
        assert verdict_stream(whole, sizes) == "HashMismatch", sizes


def test_same_content_vectors_share_the_content_digest_not_the_digest() -> None:
    index = json.loads((VECTORS / "index.json").read_text())
    pairs = [(v["file"], v["same_content_as"]) for v in index["vectors"] if "same_content_as" in v]
    assert pairs
    for a, b in pairs:
        da, db = (VECTORS / a).read_bytes(), (VECTORS / b).read_bytes()
        assert content_digest(da) == content_digest(db), a
        assert bundle_digest(da) != bundle_digest(db), a
