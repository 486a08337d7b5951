"""`fleetctl bundle build` input errors and limits: one line each, and no bundle file left behind."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from .conftest import one_line_error

SAMPLE = Path(__file__).resolve().parents[2] / "models" / "sample"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("build")
    (d / "fw.bin").write_bytes(bytes(range(256)) * 200)
    with np.load(SAMPLE / "val.npz") as v:  # every 10th sample keeps every class; the gate runs faster
        np.savez(d / "val.npz", **{k: (v[k][::10] if v[k].ndim and k != "classes" else v[k]) for k in v.files})
    return {"dir": d, "fw": d / "fw.bin", "val": d / "val.npz"}


def build_args(inputs: dict[str, Path], key: Path, **over: str | Path) -> list[str | Path]:
    opts: dict[str, str | Path] = {
        "--out": inputs["dir"] / "out.tfb", "--key": key, "--id": "t-1", "--hw": "stm32l4", "--counter": "1",
        "--firmware": inputs["fw"], "--firmware-version": "1", "--model": SAMPLE / "vibration_int8.tflite",
        "--model-version": "1", "--thresholds": SAMPLE / "thresholds.json",
        "--calibration": SAMPLE / "calibration.json", "--val": inputs["val"], "--fe-version": "vib-window-v1",
        "--max-latency-ms": "1000", "--peak-ram": "65536",
    }  # fmt: skip
    opts.update(over)
    return ["bundle", "build", *[x for kv in opts.items() for x in kv]]


@pytest.fixture(scope="module")
def key(inputs: dict[str, Path]) -> Path:
    import subprocess
    import sys

    fleetctl = Path(sys.executable).parent / "fleetctl"
    subprocess.run([str(fleetctl), "keys", "init", "--dir", str(inputs["dir"] / "k")], check=True, capture_output=True)
    return inputs["dir"] / "k" / "signing.key.pem"


def test_bundle_larger_than_the_bank_is_refused(fleetctl, inputs, key, tmp_path: Path) -> None:
    profiles = tmp_path / "tiny.toml"
    stm = resources.files("tinyfleet.bundles").joinpath("data", "hardware_profiles.toml").read_text()
    section = stm[stm.index("[stm32l4]") :].split("\n\n")[0]
    section = section.replace("[stm32l4]", "[tinybank]").replace("bank_bytes = 524288", "bank_bytes = 40960")
    profiles.write_text(section.replace("model_flash_bytes = 262144", "model_flash_bytes = 20480"))
    out = tmp_path / "b.tfb"
    r = fleetctl(*build_args(inputs, key, **{"--hw": "tinybank", "--profiles": profiles, "--out": out}))
    assert "larger than tinybank's 40960-byte OTA bank" in one_line_error(r)
    assert r.returncode == 1 and not out.exists()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"thresholds": "{not json"}, "thresholds"),
        ({"thresholds": '{"classes": [{"label": "normal", "min_score": 0}]}'}, "thresholds list 1 classes, the model"),
        ({"calibration": '{"sample_rate_hz": 1000, "channels": []}'}, "calibration needs 1..16 channels"),
    ],
)
def test_bad_json_inputs_name_the_problem(fleetctl, inputs, key, tmp_path: Path, bad: dict, message: str) -> None:
    over: dict[str, str | Path] = {"--out": tmp_path / "b.tfb"}
    for name, text in bad.items():
        (tmp_path / f"{name}.json").write_text(text)
        over[f"--{name}"] = tmp_path / f"{name}.json"
    r = fleetctl(*build_args(inputs, key, **over))
    assert message in one_line_error(r)
    assert not (tmp_path / "b.tfb").exists()


def test_unknown_profile_and_missing_key(fleetctl, inputs, key, tmp_path: Path) -> None:
    assert "nosuchboard" in one_line_error(fleetctl(*build_args(inputs, key, **{"--hw": "nosuchboard"})))
    assert "cannot read signing key" in one_line_error(fleetctl(*build_args(inputs, tmp_path / "none.pem")))


def test_build_prints_json_on_request(fleetctl, inputs, key, tmp_path: Path) -> None:
    out = tmp_path / "j.tfb"
    r = fleetctl(*build_args(inputs, key, **{"--out": out}), "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["path"] == str(out) and info["bytes"] == out.stat().st_size and len(info["digest"]) == 64
