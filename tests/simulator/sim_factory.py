"""What `fleet-sim run` needs from its operator: a signing key's public half and a factory bundle per class."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from tinyfleet.bundles.signing import generate_private_key, public_pem
from tinyfleet.simulator import releases
from tinyfleet.simulator.world import BASE


def factory_args(tmp_path: Path) -> tuple[ec.EllipticCurvePrivateKey, Path, list[str]]:
    """A fresh signing key, its public PEM (for --trust and the server) and `--factory` arguments: BASE for
    every hardware class, signed with that key."""
    key = generate_private_key()
    pub = tmp_path / "signing.pub.pem"
    pub.write_bytes(public_pem(key.public_key()))
    args = []
    for hw in releases.HARDWARE_CLASSES:
        p = tmp_path / f"{hw}.tfb"
        p.write_bytes(releases.build(BASE, hw, key))
        args += ["--factory", str(p)]
    return key, pub, args
