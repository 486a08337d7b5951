"""Streaming bundle verification throughput against bare hashlib.sha256 over the same bytes, same run.

Goal (issue 2): streaming verification of a 2 MiB bundle reaches >= 0.8 of hashlib's MB/s. The verifier
does strictly more work (ECDSA signature check, structure, per-component hashing), so the ratio shows
its overhead. Run: .venv/bin/python bench/bench_bundle_verify.py
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import best_of, write_result  # noqa: E402
from tests.vectors.generate import KEY_A, components, manifest  # noqa: E402
from tinyfleet.bundles import StreamVerifier, TrustedKeys, VerifyPolicy, build_bundle  # noqa: E402
from tinyfleet.bundles.components import ComponentType  # noqa: E402

SIZE = 2 * 1024 * 1024


def sample_bundle() -> bytes:
    comps = components("stm32l4")
    fw_len = SIZE - sum(len(p) for t, (_, p) in comps.items() if t != ComponentType.FIRMWARE) - 1024
    comps = components("stm32l4", fw_size=fw_len)
    return build_bundle(manifest("stm32l4"), comps, KEY_A)


def main() -> None:
    data = sample_bundle()
    keys = TrustedKeys.of([KEY_A.public_key()])
    policy = VerifyPolicy("stm32l4", "dev-0001", 0, 1_790_000_000)
    rows = {}
    for chunk in (4096, 65536):
        chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]

        def baseline(chunks: list[bytes] = chunks) -> None:
            h = hashlib.sha256()
            for c in chunks:
                h.update(c)
            h.digest()

        def stream(chunks: list[bytes] = chunks) -> None:
            sv = StreamVerifier(keys, policy)
            for c in chunks:
                sv.feed(c)
            sv.finish()

        t_base, t_stream = best_of(baseline), best_of(stream)
        mb = len(data) / 1e6
        rows[f"chunk_{chunk}"] = {
            "hashlib_mb_s": round(mb / t_base, 1),
            "stream_verify_mb_s": round(mb / t_stream, 1),
            "ratio": round(t_base / t_stream, 3),
        }
        print(f"chunk {chunk:>6} B: hashlib {mb / t_base:7.1f} MB/s, stream verify {mb / t_stream:7.1f} MB/s, "
              f"ratio {t_base / t_stream:.3f} (goal >= 0.8)")
    path = write_result("bundle_verify", {"bundle_bytes": len(data), "goal_ratio": 0.8, "results": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
