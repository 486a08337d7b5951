"""Generate device/tests/features/vib-window-v1.xz: the windows the C++ feature extractor is tested on.

    python scripts/gen_feature_windows.py          # rewrite the file
    python scripts/gen_feature_windows.py --check  # exit 1 if the committed file is stale (tests do this)

The device tests (device/tests/features/test_features.cpp, on the host and on the Cortex-M4 under QEMU)
compare the C++ extractor with the Python reference, `tinyfleet.bundles.features`, which needs numpy and
cannot run there. So the reference's inputs and outputs are written down here:

- the 1,000 calibrated windows of the validation set, regenerated from their seeds by models/dataset.py;
  their reference outputs are not stored: they are `models/sample/val.npz`'s `inputs` (checked here to be
  features.extract() of these windows), which the test build embeds next to this file;
- edge windows (int16 extremes) with features.extract()'s output for each.

Format (xz-compressed; little-endian): "TFFW", u16 version 1, u16 frames, u16 channels, u16 val_count,
u16 edge_count, u16 0; val_count windows (int16 frames x channels), edge_count windows, edge_count
reference outputs (int8 frames x channels), edge_count names (32 bytes, NUL-padded ASCII).
"""

from __future__ import annotations

import argparse
import importlib.util
import lzma
import struct
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "device" / "tests" / "features" / "vib-window-v1.xz"
VAL_NPZ = ROOT / "models" / "sample" / "val.npz"
NAME_LEN = 32


def _dataset():
    spec = importlib.util.spec_from_file_location("_models_dataset", ROOT / "models" / "dataset.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def edge_windows(frames: int, channels: int) -> list[tuple[str, np.ndarray]]:
    """Windows at the int16 limits: where a sum, a mean or a difference would overflow a narrower type."""
    lo, hi = -32768, 32767
    n = np.arange(frames)[:, None]
    alt_lo = np.where(n % 2 == 0, lo, hi).repeat(channels, axis=1)
    mixed = np.stack([alt_lo[:, 0], np.full(frames, hi), np.full(frames, lo)], axis=1)
    step = np.where(n < frames // 2, lo, hi).repeat(channels, axis=1)
    ramp = (n * 65535 // (frames - 1) + lo).repeat(channels, axis=1)
    one_spike = np.full((frames, channels), -1)
    one_spike[7] = [hi, lo, 0]
    windows = [
        ("all -32768", np.full((frames, channels), lo)),
        ("all 32767", np.full((frames, channels), hi)),
        ("alternating -32768, 32767", alt_lo),
        ("alternating 32767, -32768", -1 - alt_lo),
        ("x alternating, y max, z min", mixed),
        ("half -32768, half 32767", step),
        ("ramp -32768 to 32767", ramp),
        ("-1, one spike: mean floors", one_spike),
    ]
    return [(name, w.astype(np.int16)) for name, w in windows]


def render() -> bytes:
    """The file's uncompressed content."""
    ds = _dataset()
    feat = ds.features
    val = ds.validation_set()
    with np.load(VAL_NPZ, allow_pickle=False) as committed:
        if not np.array_equal(committed["inputs"], feat.extract(val.calibrated)):
            sys.exit(f"gen_feature_windows: {VAL_NPZ} is not features.extract() of the regenerated windows")
    edges = edge_windows(feat.WINDOW, feat.CHANNELS)
    out = bytearray(struct.pack("<4sHHHHHH", b"TFFW", 1, feat.WINDOW, feat.CHANNELS, len(val), len(edges), 0))
    out += val.calibrated.astype("<i2").tobytes()
    for _, w in edges:
        out += w.astype("<i2").tobytes()
    for _, w in edges:
        out += feat.extract(w).tobytes()
    for name, _ in edges:
        if len(name) >= NAME_LEN:
            sys.exit(f"gen_feature_windows: edge window name {name!r} is longer than {NAME_LEN - 1} characters")
        out += name.encode("ascii").ljust(NAME_LEN, b"\0")
    return bytes(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed file differs")
    args = ap.parse_args()
    content = render()
    if args.check:
        if not OUT.exists() or lzma.decompress(OUT.read_bytes()) != content:
            sys.exit(f"{OUT.relative_to(ROOT)} is stale: run python scripts/gen_feature_windows.py")
        return
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(lzma.compress(content, preset=9))
    print(f"written: {OUT.relative_to(ROOT)} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
