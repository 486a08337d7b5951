"""Device agent core: host footprint and streaming-verify throughput, written to bench/results/device.json.

1. Footprint: text/data/bss of every object in `tinyfleet_core` as built for the host (`size` on the
   objects of a MinSizeRel build: the optimisation an MCU build would use), and the total.
2. Throughput: the C++ `StreamVerifier` (signature, structure, per-component SHA-256) on a 2 MiB bundle
   against mbedTLS SHA-256 alone over the same bytes in the same chunks, in the same run, best of 41 interleaved rounds
   (device/bench/verify_throughput.cpp, Release build). Goal: ratio >= 0.8. The fixed cost (metadata
   prefix: ECDSA P-256 verify) and the payload phase's own ratio are reported apart.

Run: .venv/bin/python bench/bench_device.py
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import write_result  # noqa: E402
from tests.vectors.generate import KEY_A, components, manifest  # noqa: E402
from tinyfleet.bundles import build_bundle  # noqa: E402
from tinyfleet.bundles.components import ComponentType  # noqa: E402
from tinyfleet.bundles.signing import public_der  # noqa: E402

SIZE = 2 * 1024 * 1024
CHUNKS = (4096, 65536)
REPEAT = 41
GOAL = 0.8


def run(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"bench_device: {' '.join(cmd)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return proc.stdout


def build(build_type: str, target: str) -> Path:
    build_dir = ROOT / "build" / f"device-bench-{build_type.lower()}"
    run(["cmake", "-S", "device", "-B", str(build_dir), f"-DCMAKE_BUILD_TYPE={build_type}"])
    run(["cmake", "--build", str(build_dir), "-j2", "--target", target])
    return build_dir


def footprint() -> dict[str, object]:
    lib = build("MinSizeRel", "tinyfleet_core") / "libtinyfleet_core.a"
    out = run(["size", "--format=berkeley", str(lib)])
    objects: dict[str, dict[str, int]] = {}
    for line in out.splitlines()[1:]:
        m = re.match(r"\s*(\d+)\s+(\d+)\s+(\d+)\s+\d+\s+\w+\s+(\S+)", line)
        if m:
            name = m.group(4).removesuffix(".cpp.o")
            objects[name] = {"text": int(m.group(1)), "data": int(m.group(2)), "bss": int(m.group(3))}
    total = {k: sum(o[k] for o in objects.values()) for k in ("text", "data", "bss")}
    return {"build_type": "MinSizeRel", "compiler": compiler_id(lib.parent), "total": total, "objects": objects}


def compiler_id(build_dir: Path) -> str:
    cache = (build_dir / "CMakeCache.txt").read_text()
    m = re.search(r"^CMAKE_CXX_COMPILER:\w+=(.*)$", cache, re.M)
    return m.group(1) if m else "unknown"


def sample_bundle() -> bytes:
    comps = components("stm32l4")
    fw_len = SIZE - sum(len(p) for t, (_, p) in comps.items() if t != ComponentType.FIRMWARE) - 1024
    return build_bundle(manifest("stm32l4"), components("stm32l4", fw_size=fw_len), KEY_A)


def throughput() -> dict[str, object]:
    exe = build("Release", "verify_throughput") / "verify_throughput"
    rows: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        bundle, key = Path(tmp) / "bundle.tfb", Path(tmp) / "key.der"
        bundle.write_bytes(sample_bundle())
        key.write_bytes(public_der(KEY_A.public_key()))
        for chunk in CHUNKS:
            line = run([str(exe), str(bundle), str(key), "stm32l4", "dev-0001", "0", "1790000000", str(chunk),
                        str(REPEAT)])
            row = json.loads(line)
            rows[f"chunk_{chunk}"] = row
            print(f"chunk {chunk:>6} B: mbedTLS SHA-256 {row['sha256_mb_s']:7.1f} MB/s, "
                  f"stream verify {row['verify_mb_s']:7.1f} MB/s, ratio {row['ratio']:.3f} (goal >= {GOAL}); "
                  f"metadata prefix (signature) {row['prefix_verify_s'] * 1e3:.2f} ms, "
                  f"payload phase ratio {row['payload_phase_ratio']:.3f}")
    return rows


def main() -> None:
    fp = footprint()
    t = fp["total"]
    assert isinstance(t, dict)
    print(f"core footprint (MinSizeRel, host): text {t['text']} B, data {t['data']} B, bss {t['bss']} B")
    rows = throughput()
    path = write_result("device", {"footprint": fp, "goal_ratio": GOAL, "bundle_bytes": SIZE, "throughput": rows})
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
