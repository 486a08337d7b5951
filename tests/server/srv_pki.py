"""Test CAs and broker certificates made with `cryptography`: what a fleet's PKI would hand the server."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)


def key_pem(key: ec.EllipticCurvePrivateKey, password: bytes | None = None) -> bytes:
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return key_pem(self.key)

    @property
    def fingerprint(self) -> str:
        return self.cert.fingerprint(hashes.SHA256()).hex()

    def write(self, d: Path, name: str) -> tuple[Path, Path]:
        (d / f"{name}.pem").write_bytes(self.pem)
        (d / f"{name}.key").write_bytes(self.key_pem)
        return d / f"{name}.pem", d / f"{name}.key"


def make_ca(cn: str, *, ca: bool = True, key_cert_sign: bool | None = None, start: datetime.datetime | None = None,
            end: datetime.datetime | None = None, issuer: Issued | None = None) -> Issued:  # fmt: skip
    """A CA certificate (self-signed, or by `issuer` for an intermediate); `ca=False` makes a leaf that only looks
    like one; `key_cert_sign` adds a key usage extension with that bit."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    b = (
        x509.CertificateBuilder().subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start or NOW - DAY).not_valid_after(end or NOW + 30 * DAY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )  # fmt: skip
    if key_cert_sign is not None:
        b = b.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                          data_encipherment=False, key_agreement=False, key_cert_sign=key_cert_sign,
                                          crl_sign=key_cert_sign, encipher_only=False, decipher_only=False),
                            critical=True)  # fmt: skip
    return Issued(b.sign(issuer.key if issuer else key, hashes.SHA256()), key)


def make_server(ca: Issued, *, host: str = "127.0.0.1", start: datetime.datetime | None = None,
                end: datetime.datetime | None = None) -> Issued:  # fmt: skip
    """A broker certificate for `host` (an IP address), issued by `ca`."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"broker {host}")]))
        .issuer_name(ca.cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start or NOW - DAY).not_valid_after(end or NOW + 30 * DAY)
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )  # fmt: skip
    return Issued(cert, key)
