from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tinyfleet.bundles import TrustedKeys, VerifyPolicy
from tinyfleet.bundles.signing import load_public_key

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


@dataclass(frozen=True)
class Vector:
    name: str
    data: bytes
    expect: str
    keys: TrustedKeys
    policy: VerifyPolicy


def load_vectors() -> list[Vector]:
    index = json.loads((VECTORS / "index.json").read_text())
    pub = {k["key_id"]: load_public_key(VECTORS / k["pem"]) for k in index["keys"]}
    return [
        Vector(
            v["file"],
            (VECTORS / v["file"]).read_bytes(),
            v["expect"],
            TrustedKeys.of(pub[k] for k in v["trusted_keys"]),
            VerifyPolicy(v["hardware_class"], v["device_id"], v["min_counter"], v["now"]),
        )
        for v in index["vectors"]
    ]


@pytest.fixture(scope="session")
def vectors() -> list[Vector]:
    return load_vectors()
