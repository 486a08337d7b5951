"""Mutated bundles are refused with a typed BundleError only: never another exception, never a crash.

Mutations are applied both to raw bytes and to re-signed bundles (so the structure checks behind the signature
are reached too). Streaming verification must reach the same verdict as whole-file verification.
"""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.bundles.verdicts import stream_verdict, verdict
from tests.vectors.generate import KEY_A, resign, valid
from tinyfleet.bundles import TrustedKeys, VerifyPolicy

TRUST = TrustedKeys.of([KEY_A.public_key()])
POLICY = VerifyPolicy("stm32l4", "dev-0001", 0, 1_790_000_000)
BASE = valid("stm32l4")
META_END = 700  # mutations inside the metadata prefix are the interesting ones


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, META_END), st.integers(1, 255)),
    st.tuples(st.just("set"), st.integers(0, META_END), st.integers(0, 255)),
    st.tuples(st.just("cut"), st.integers(0, len(BASE)), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, META_END), st.integers(0, 255)),
    st.tuples(st.just("delete"), st.integers(0, META_END), st.just(0)),
)


def mutate(data: bytes, ops: list[tuple[str, int, int]]) -> bytes:
    buf = bytearray(data)
    for op, pos, val in ops:
        pos = min(pos, len(buf))
        if op == "flip" and pos < len(buf):
            buf[pos] ^= val
        elif op == "set" and pos < len(buf):
            buf[pos] = val
        elif op == "cut":
            del buf[pos:]
        elif op == "insert":
            buf.insert(pos, val)
        elif op == "delete" and pos < len(buf):
            del buf[pos]
    return bytes(buf)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutation, min_size=1, max_size=4), st.booleans(), st.integers(1, 4096))
def test_mutations_give_typed_verdicts(ops: list[tuple[str, int, int]], re_sign: bool, chunk: int) -> None:
    data = mutate(BASE, ops)
    if re_sign and len(data) >= 32:
        with contextlib.suppress(IndexError, ValueError):  # too mangled to re-sign: test the raw bytes
            data = resign(data)
    v = verdict(data, TRUST, POLICY)  # any exception other than BundleError fails the test
    assert v == stream_verdict(data, chunk, TRUST, POLICY)
    if data == BASE:
        assert v == "ok"
