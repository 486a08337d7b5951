"""The committed sample models, validation set and fixtures are the ones recorded in models/SHA256SUMS."""

from __future__ import annotations

import hashlib
from pathlib import Path

MODELS = Path(__file__).resolve().parents[2] / "models"


def test_every_committed_output_matches_its_checksum() -> None:
    lines = (MODELS / "SHA256SUMS").read_text().splitlines()
    listed = {}
    for line in lines:
        digest, name = line.split("  ", 1)
        listed[name] = digest
    on_disk = {p.relative_to(MODELS).as_posix() for d in ("sample", "fixtures") for p in (MODELS / d).iterdir()}
    assert set(listed) == on_disk
    for name, digest in listed.items():
        assert hashlib.sha256((MODELS / name).read_bytes()).hexdigest() == digest, name


def test_models_are_small() -> None:
    for p in (MODELS / "sample").glob("*.tflite"):
        assert p.stat().st_size < 64 * 1024
    assert (MODELS / "sample" / "vibration_int8.tflite").stat().st_size < 16 * 1024
