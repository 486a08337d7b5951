"""The Python verifier's verdict on a bundle, whole and streamed: a BundleError's code, or "ok"."""

from __future__ import annotations

from tinyfleet.bundles import BundleError, StreamVerifier, TrustedKeys, VerifyPolicy, verify_bundle


def verdict(data: bytes, trust: TrustedKeys, policy: VerifyPolicy) -> str:
    try:
        verify_bundle(data, trust, policy)
    except BundleError as e:
        return e.code
    return "ok"


def stream_verdict(data: bytes, chunk: int, trust: TrustedKeys, policy: VerifyPolicy) -> str:
    sv = StreamVerifier(trust, policy)
    try:
        for i in range(0, len(data), chunk):
            sv.feed(data[i : i + chunk])
        sv.finish()
    except BundleError as e:
        return e.code
    return "ok"
