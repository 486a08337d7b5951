"""The one release path (gate, then sign for the profile) that the CLI and the server both use."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from tests.vectors.generate import KEY_A
from tinyfleet.bundles import Calibration, ComponentType, Deployment, Thresholds, parse_bundle
from tinyfleet.bundles.gate import load_validation_set
from tinyfleet.bundles.profiles import load_profile
from tinyfleet.bundles.release import GateRefused, ReleaseError, ReleaseParts, build_release, recalibrate

MODELS = Path(__file__).resolve().parents[2] / "models"
SAMPLE = MODELS / "sample"


@pytest.fixture(scope="module")
def val(tmp_path_factory):
    p = tmp_path_factory.mktemp("val") / "val.npz"
    with np.load(SAMPLE / "val.npz") as v:  # every 10th sample keeps every class
        np.savez(p, **{k: (v[k][::10] if v[k].ndim and k != "classes" else v[k]) for k in v.files})
    return load_validation_set(p)


@pytest.fixture(scope="module")
def parts() -> ReleaseParts:
    return ReleaseParts(
        bundle_id="vib-1.0.0-stm32l4",
        security_counter=4,
        firmware=bytes(range(256)) * 64,
        firmware_version="2.3.1",
        model=(SAMPLE / "vibration_int8.tflite").read_bytes(),
        model_version="1.0.0",
        thresholds=Thresholds.from_json(json.loads((SAMPLE / "thresholds.json").read_text())),
        calibration=Calibration.from_json(json.loads((SAMPLE / "calibration.json").read_text())),
        feature_extractor_version="vib-window-v1",
        deployment=Deployment(20, 1000, 65536),
    )


def test_stm32l4_release_and_its_recalibration_keep_the_firmware_where_it_runs(parts, val) -> None:
    stm = load_profile("stm32l4")
    data, report = build_release(parts, KEY_A, stm, val=val)
    base = parse_bundle(data)
    assert report.passed and base.component(ComponentType.FIRMWARE).offset == stm.firmware_offset == 8192

    new_cal = dataclasses.replace(parts.calibration, sample_rate_hz=parts.calibration.sample_rate_hz + 1)
    recal = parse_bundle(recalibrate(base, new_cal, KEY_A, stm, bundle_id="cal-dev-7", device_scope="dev-7"))
    assert recal.component(ComponentType.FIRMWARE).offset == 8192  # the XIP image stays at its link address
    unchanged = [t for t in ComponentType if t != ComponentType.CALIBRATION]
    assert all(recal.component(t).sha256 == base.component(t).sha256 for t in unchanged)
    assert recal.component(ComponentType.CALIBRATION).sha256 != base.component(ComponentType.CALIBRATION).sha256
    m = recal.manifest
    assert (m.security_counter, m.device_scope, m.rollback_target) == (5, "dev-7", "vib-1.0.0-stm32l4")


def test_refusals_name_their_reason(parts, val) -> None:
    stm = load_profile("stm32l4")
    with pytest.raises(GateRefused, match="full_integer") as refused:
        build_release(
            dataclasses.replace(parts, model=(MODELS / "fixtures" / "float_io.tflite").read_bytes()), KEY_A, stm,
            val=val,
        )  # fmt: skip
    assert not refused.value.report.passed
    tiny = dataclasses.replace(stm, name="tiny", bank_bytes=40960, model_flash_bytes=20480)
    with pytest.raises(ReleaseError, match="larger than tiny's 40960-byte OTA bank"):
        build_release(parts, KEY_A, tiny, val=val)
    one_class = Thresholds(parts.thresholds.classes[:1])
    with pytest.raises(ReleaseError, match="thresholds list 1 classes, the model outputs 4"):
        build_release(dataclasses.replace(parts, thresholds=one_class), KEY_A, stm, val=val)
    # a device would run no inference at all: its extractor cannot feed the model
    with pytest.raises(ReleaseError, match="feature extractor 'vib-window-v2' is not one devices have"):
        build_release(dataclasses.replace(parts, feature_extractor_version="vib-window-v2"), KEY_A, stm, val=val)
    base = parse_bundle(build_release(parts, KEY_A, stm, val=val)[0])
    with pytest.raises(ReleaseError, match="not the base bundle's 'stm32l4'"):
        recalibrate(base, parts.calibration, KEY_A, load_profile("esp32s3"), bundle_id="x")
