"""The doc alone is enough: run docs/bundle-format.md's openssl recipe, verbatim, on a Python-built bundle."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tinyfleet.bundles.signing import public_pem

from .conftest import VECTORS

DOC = Path(__file__).resolve().parents[2] / "docs" / "bundle-format.md"


def recipe() -> str:
    section = DOC.read_text().split("## Verifying with openssl", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "the openssl recipe's sh block is missing from docs/bundle-format.md"
    return match.group(1)


def run_recipe(tmp_path: Path, bundle: bytes, pub_pem: bytes) -> str:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is not installed (make deps installs it)")
    (tmp_path / "bundle.tfb").write_bytes(bundle)
    (tmp_path / "pub.pem").write_bytes(pub_pem)
    r = subprocess.run(["bash", "-c", recipe()], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    return r.stdout + r.stderr


def test_recipe_verifies_a_valid_bundle(tmp_path: Path) -> None:
    from tests.vectors.generate import KEY_A

    out = run_recipe(tmp_path, (VECTORS / "valid-stm32l4.tfb").read_bytes(), public_pem(KEY_A.public_key()))
    assert "Verified OK" in out
    assert out.count("ok") >= 5 and "MISMATCH" not in out
    assert "89 54 46 42 0d 0a 1a 0a" in out


def test_recipe_rejects_tampering(tmp_path: Path) -> None:
    from tests.vectors.generate import KEY_A

    tampered = run_recipe(tmp_path, (VECTORS / "tampered-manifest.tfb").read_bytes(), public_pem(KEY_A.public_key()))
    assert "Verification failure" in tampered
    mismatch = run_recipe(tmp_path, (VECTORS / "hash-mismatch.tfb").read_bytes(), public_pem(KEY_A.public_key()))
    assert "Verified OK" in mismatch and "HASH MISMATCH" in mismatch
