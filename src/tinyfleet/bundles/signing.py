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
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from . import errors as E

KEY_ID_LEN = 8
# n, the order of P-256's base point: a signature (r, s) and its twin (r, n - s) both verify, so only the
# low-s one (s <= n / 2) is the bundle's (docs/bundle-format.md, "Signature block").
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


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
    """DER ECDSA-Sig-Value over SHA-256(data), low-s; deterministic (RFC 6979), so rebuilding gives identical
    bytes. OpenSSL returns either twin: the high one is replaced by (r, n - s), which verifies as well."""
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True)))
    return encode_dss_signature(r, min(s, P256_ORDER - s))


def check_canonical(signature: bytes) -> None:
    """The one encoding of a signature: strict DER (minimal lengths and integers, nothing after the SEQUENCE)
    with s <= n / 2. Any other shape of a valid signature would give the same bundle a second digest."""
    try:
        r, s = decode_dss_signature(signature)
    except ValueError as e:
        raise E.BadSignature(f"signature is not a DER ECDSA-Sig-Value ({e})") from e
    if encode_dss_signature(r, s) != signature:
        raise E.BadSignature("signature is not in canonical DER (a non-minimal length or integer)")
    if s > P256_ORDER // 2:
        raise E.BadSignature("signature has a high s (s > n/2): only its low-s twin (r, n - s) is accepted")


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
        check_canonical(signature)
        try:
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature as e:
            raise E.BadSignature(f"signature by key {kid.hex()} does not verify") from e
