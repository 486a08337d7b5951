"""Signing keys (ECDSA P-256), key ids and signatures, through `cryptography`."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from . import errors as E

KEY_ID_LEN = 8


def generate_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_der(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(key: ec.EllipticCurvePublicKey) -> bytes:
    """First 8 bytes of SHA-256 over the DER SubjectPublicKeyInfo (docs/bundle-format.md)."""
    return hashlib.sha256(public_der(key)).digest()[:KEY_ID_LEN]


def private_pem(key: ec.EllipticCurvePrivateKey, passphrase: bytes | None = None) -> bytes:
    enc = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def public_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _check_curve(key: object, path: Path) -> None:
    curve = getattr(key, "curve", None)
    if not isinstance(curve, ec.SECP256R1):
        raise E.KeyFileError(f"{path}: not an ECDSA P-256 key")


def load_private_key(path: Path, passphrase: bytes | None = None) -> ec.EllipticCurvePrivateKey:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise E.KeyFileError(f"{path}: cannot read signing key ({e.strerror})") from e
    if passphrase is None and os.environ.get("TINYFLEET_KEY_PASSPHRASE"):
        passphrase = os.environ["TINYFLEET_KEY_PASSPHRASE"].encode()
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError as e:
        raise E.KeyFileError(f"{path}: key is encrypted; set TINYFLEET_KEY_PASSPHRASE") from e
    except (ValueError, UnsupportedAlgorithm) as e:
        raise E.KeyFileError(f"{path}: not a PEM private key ({e})") from e
    _check_curve(key, path)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def load_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    """A PEM public key, or the public half of a PEM private key."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise E.KeyFileError(f"{path}: cannot read key ({e.strerror})") from e
    try:
        if b"PRIVATE KEY" in data:
            return load_private_key(path).public_key()
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as e:
        raise E.KeyFileError(f"{path}: not a PEM public key ({e})") from e
    _check_curve(key, path)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


def sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """DER ECDSA-Sig-Value over SHA-256(data); deterministic (RFC 6979), so rebuilding gives identical bytes."""
    return key.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))


@dataclass
class TrustedKeys:
    """The set of public keys a verifier accepts, by key id. Several at once is how keys rotate."""

    keys: dict[bytes, ec.EllipticCurvePublicKey] = field(default_factory=dict)

    @classmethod
    def of(cls, keys: Iterable[ec.EllipticCurvePublicKey]) -> TrustedKeys:
        return cls({key_id(k): k for k in keys})

    @classmethod
    def from_pem_files(cls, paths: Iterable[Path]) -> TrustedKeys:
        return cls.of(load_public_key(Path(p)) for p in paths)

    def verify(self, kid: bytes, signature: bytes, data: bytes) -> None:
        key = self.keys.get(kid)
        if key is None:
            raise E.UnknownKeyId(f"signed by key {kid.hex()}, which is not among the trusted keys")
        try:
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature as e:
            raise E.BadSignature(f"signature by key {kid.hex()} does not verify") from e
