"""Uploads: signature, the real model gate (LiteRT/TFLM on the committed sample and fixture models), retiring."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient as HttpClient

from tests.vectors.generate import sign_with_nonce
from tinyfleet.bundles import DType, ModelContract, TensorSpec, TrustedKeys, generate_private_key, verify_bundle
from tinyfleet.bundles.format import SIG_BLOCK_LEN, SignatureBlock, parse_meta
from tinyfleet.server.api.app import create_app
from tinyfleet.server.runtime import FleetRuntime
from tinyfleet.server.settings import Settings

from ..srv_bundles import make_bundle, write_public_key

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = (ROOT / "models/sample/vibration_int8.tflite").read_bytes()
CONTRACT = ModelContract(
    input=TensorSpec((1, 256, 3), DType.INT8, 0.0078125, 0),
    output=TensorSpec((1, 4), DType.INT8, 0.00390625, -128),
    feature_extractor_version="vib-window-v1",
    arena_bytes=5120,
)
TOKEN = "upload-admin"


@pytest.fixture
def api(tmp_path: Path):
    key = generate_private_key()
    pub = write_public_key(key, tmp_path / "pub.pem")
    settings = Settings(data_dir=tmp_path / "data", bootstrap_admin_token=TOKEN, trusted_key_files=[pub])
    with HttpClient(create_app(FleetRuntime(settings))) as http:
        http.headers["Authorization"] = f"Bearer {TOKEN}"
        yield http, key


def _post(http: HttpClient, data: bytes):
    return http.post("/api/v1/bundles", content=data, headers={"Content-Type": "application/octet-stream"})


def test_model_gate_runs_on_upload(api) -> None:
    http, key = api
    r = _post(http, make_bundle(key, "vib-1", model=SAMPLE, contract=CONTRACT))
    assert r.status_code == 201, r.text
    assert r.json()["gate_report"]["passed"] is True and r.json()["gate_report"]["arena_bytes"] == 5120
    float_model = (ROOT / "models/fixtures/float_io.tflite").read_bytes()
    r = _post(http, make_bundle(key, "vib-float", model=float_model, contract=CONTRACT))
    assert r.status_code == 422 and r.json()["detail"] == "model gate failed: full_integer"
    big = (ROOT / "models/fixtures/arena_large.tflite").read_bytes()
    r = _post(http, make_bundle(key, "vib-big", model=big, contract=CONTRACT))
    assert r.status_code == 422 and r.json()["detail"].startswith("model gate failed: memory")
    lying = ModelContract(CONTRACT.input, TensorSpec((1, 5), DType.INT8, 0.00390625, -128), "vib-window-v1", 5120)
    r = _post(http, make_bundle(key, "vib-lie", model=SAMPLE, contract=lying))
    assert r.status_code == 422 and r.json()["detail"].startswith("manifest output contract")
    r = _post(http, b"not a model")
    assert r.status_code == 422 and r.json()["detail"].startswith("bundle refused: BadMagic")


def test_signature_and_duplicates(api) -> None:
    http, key = api
    other = generate_private_key()
    r = _post(http, make_bundle(other, "vib-x", model=SAMPLE, contract=CONTRACT))
    assert r.status_code == 422 and r.json()["detail"].startswith("bundle refused: UnknownKeyId")
    data = bytearray(make_bundle(key, "vib-2", model=SAMPLE, contract=CONTRACT))
    data[-1] ^= 0xFF
    r = _post(http, bytes(data))
    assert r.status_code == 422 and "HashMismatch" in r.json()["detail"]
    assert _post(http, b"").status_code == 400
    ok = make_bundle(key, "vib-2", model=SAMPLE, contract=CONTRACT)
    assert _post(http, ok).status_code == 201
    r = _post(http, ok)
    assert r.status_code == 409 and "already stored" in r.json()["detail"]
    # The same signed region under another valid signature (another nonce): one content, one stored bundle.
    meta = parse_meta(ok)
    t = meta.header.signed_len
    again = ok[:t] + SignatureBlock(1, meta.signature.key_id, sign_with_nonce(key, ok[:t], k=0x5EED)).encode()
    again += ok[t + SIG_BLOCK_LEN :]
    assert verify_bundle(again, TrustedKeys.of([key.public_key()])).digest != meta.digest
    r = _post(http, again)
    assert r.status_code == 409 and "differs only in its signature" in r.json()["detail"]
    assert [b["bundle_id"] for b in http.get("/api/v1/bundles").json()] == ["vib-2"]
    results = [e["result"] for e in http.get("/api/v1/audit").json() if e["action"] == "bundle.upload"]
    assert any(r.startswith("refused: bundle refused: UnknownKeyId") for r in results)


def _parts() -> dict:
    import base64
    import json

    b64 = lambda p: base64.b64encode(p.read_bytes()).decode()  # noqa: E731
    sample = ROOT / "models/sample"
    return {
        "bundle_id": "vib-built", "hardware_class": "stm32l4", "security_counter": 3,
        "firmware": {"version": "1.0.0", "data_base64": base64.b64encode(b"\x01" * 6000).decode()},
        "model": {"version": "1.0.0", "data_base64": b64(sample / "vibration_int8.tflite")},
        "thresholds": json.loads((sample / "thresholds.json").read_text()),
        "calibration": json.loads((sample / "calibration.json").read_text()),
        "validation_set_base64": b64(sample / "val.npz"),
        "feature_extractor_version": "vib-window-v1",
        "deployment": {"max_latency_ms": 40, "peak_ram_bytes": 48000},
    }  # fmt: skip


def test_build_from_parts_through_the_api(tmp_path: Path) -> None:
    from tinyfleet.bundles.signing import private_pem

    key = generate_private_key()
    (tmp_path / "key.pem").write_bytes(private_pem(key))
    pub = write_public_key(key, tmp_path / "pub.pem")
    settings = Settings(data_dir=tmp_path / "data", bootstrap_admin_token=TOKEN, trusted_key_files=[pub],
                        signing_key_file=tmp_path / "key.pem")  # fmt: skip
    with HttpClient(create_app(FleetRuntime(settings))) as http:
        http.headers["Authorization"] = f"Bearer {TOKEN}"
        r = http.post("/api/v1/bundles/build", json=_parts())
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["security_counter"] == 3 and body["gate_report"]["passed"] is True
        assert body["manifest"]["model_contract"]["arena_bytes"] == body["gate_report"]["arena_bytes"]
        assert [c["type"] for c in body["components"]] == [
            "firmware", "model", "thresholds", "calibration", "health_vectors"]  # fmt: skip
        bad = _parts() | {"bundle_id": "vib-bad", "thresholds": {"classes": []}}
        r = http.post("/api/v1/bundles/build", json=bad)
        assert r.status_code == 422 and "thresholds" in r.json()["detail"]
        r = http.post("/api/v1/bundles/build", json=_parts() | {"bundle_id": "x", "validation_set_base64": "%%%"})
        assert r.status_code == 422 and r.json()["detail"].startswith("validation_set_base64: String should match")


def test_build_needs_a_server_signing_key(api) -> None:
    http, _key = api
    r = http.post("/api/v1/bundles/build", json=_parts())
    assert r.status_code == 409 and "holds no signing key" in r.json()["detail"]


def test_a_bundle_larger_than_the_update_bank_is_refused(api) -> None:
    http, key = api
    big = make_bundle(key, "too-big", firmware=b"F" * 600_000, model=SAMPLE, contract=CONTRACT)
    r = _post(http, big)
    assert r.status_code == 422
    assert r.json()["detail"] == f"bundle 'too-big' is {len(big)} bytes; a stm32l4 update bank holds 524288 bytes"
    assert http.get("/api/v1/bundles/too-big").status_code == 404
