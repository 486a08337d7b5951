"""fleetctl keys / bundle inspect / bundle verify, run as the real console script."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.bundles.conftest import VECTORS, load_vectors

from .conftest import one_line_error

INDEX = json.loads((VECTORS / "index.json").read_text())
KEYS = {k["key_id"]: VECTORS / k["pem"] for k in INDEX["keys"]}


def test_keys_init_is_idempotent_and_private(fleetctl, tmp_path: Path) -> None:
    r = fleetctl("keys", "init", "--dir", tmp_path / "k")
    assert r.returncode == 0, r.stderr
    priv = tmp_path / "k" / "signing.key.pem"
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    kid = fleetctl("keys", "show", tmp_path / "k" / "signing.pub.pem").stdout.strip()
    assert len(kid) == 16 and kid in r.stdout
    again = fleetctl("keys", "init", "--dir", tmp_path / "k")
    assert again.returncode == 0 and "keeping it" in again.stdout
    assert fleetctl("keys", "show", priv).stdout.strip() == kid


def test_inspect_prints_manifest_and_components(fleetctl) -> None:
    r = fleetctl("bundle", "inspect", VECTORS / "valid-esp32s3.tfb", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["hardware_class"] == "esp32s3"
    assert info["model_contract"]["feature_extractor_version"] == "vib-window-v1"
    assert [c["type"] for c in info["components"]] == [
        "firmware", "model", "thresholds", "calibration", "health_vectors"
    ]
    assert info["payload_summaries"]["health_vectors"]["count"] == 3
    table = fleetctl("bundle", "inspect", VECTORS / "valid-esp32s3.tfb")
    assert table.returncode == 0 and "vib-window-v1" in table.stdout and "health_vectors" in table.stdout


@pytest.mark.parametrize("v", [v for v in INDEX["vectors"]], ids=[v["file"] for v in INDEX["vectors"]])
def test_verify_gives_each_vector_its_verdict(fleetctl, v: dict) -> None:
    args = ["bundle", "verify", VECTORS / v["file"], "--hw", v["hardware_class"], "--device", v["device_id"],
            "--min-counter", str(v["min_counter"]), "--now", str(v["now"])]
    for kid in v["trusted_keys"]:
        args += ["--key", KEYS[kid]]
    r = fleetctl(*args)
    if v["expect"] == "ok":
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("OK ")
        as_json = json.loads(fleetctl(*args, "--json").stdout)
        assert as_json["ok"] and as_json["hardware_class"] == v["hardware_class"]
    else:
        assert r.returncode == 1
        assert one_line_error(r).startswith(f"error: {v['expect']}: ")


def test_bad_inputs_get_one_line_errors(fleetctl, tmp_path: Path) -> None:
    key = KEYS[INDEX["keys"][0]["key_id"]]
    assert "cannot read bundle" in one_line_error(fleetctl("bundle", "verify", tmp_path / "nope.tfb", "--key", key))
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    assert "not a PEM public key" in one_line_error(
        fleetctl("bundle", "verify", VECTORS / "valid-stm32l4.tfb", "--key", junk)
    )
    assert "BadMagic" in one_line_error(fleetctl("bundle", "inspect", junk))
    assert len(load_vectors()) == len(INDEX["vectors"])
