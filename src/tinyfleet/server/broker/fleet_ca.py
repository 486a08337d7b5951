"""The fleet's broker CA: the checks a CA rotation makes on what it takes in, and its steps as one table (pure:
PEM text and a time in, parsed facts or a refusal out; no files, no database, no broker).

Theory of operation (docs/operations.md, "Rotating the broker's CA"). Devices verify the broker's certificate
against the trust anchors they were handed with their credentials. Every anchor the fleet hands out has a
role: `current` (it issued the certificate the broker serves), `next` (added, the broker does not serve a
certificate from it yet) or `previous` (the broker served one from it before the switch; still handed out
until it is retired). The roles present make the rotation's phase, and each operator step moves between
phases as STEPS says, or is refused with the reason in the table.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

CURRENT, NEXT, PREVIOUS = "current", "next", "previous"
STEADY, ADDED, SWITCHED = "steady", "added", "switched"


class CaError(ValueError):
    """A certificate, key or step the rotation refuses; the message names the problem."""


@dataclass(frozen=True)
class Certificate:
    fingerprint: str  # SHA-256 of the DER encoding, lower-case hex
    subject: str  # RFC 4514
    not_before: float
    not_after: float
    pem: str  # as cryptography writes it
    cert: x509.Certificate = field(compare=False, repr=False)


def _facts(cert: x509.Certificate) -> Certificate:
    return Certificate(
        fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
        subject=cert.subject.rfc4514_string(),
        not_before=cert.not_valid_before_utc.timestamp(),
        not_after=cert.not_valid_after_utc.timestamp(),
        pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        cert=cert,
    )


def _when(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_certificates(pem: str | bytes, what: str) -> list[Certificate]:
    """Every certificate in a PEM text; `what` names the text in a refusal."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CaError(f"{what}: no PEM certificate in it (or one that cannot be parsed)") from None
    return [_facts(c) for c in certs]


def _check_valid(c: Certificate, what: str, now: float) -> None:
    if now < c.not_before:
        raise CaError(f"{what} ({c.subject}) is not valid before {_when(c.not_before)}")
    if now > c.not_after:
        raise CaError(f"{what} ({c.subject}) expired at {_when(c.not_after)}")


def parse_ca(pem: str | bytes, now: float, what: str = "the new CA") -> Certificate:
    """Exactly one certificate, a CA (basic constraints `CA:TRUE`; key usage, when present, allows signing
    certificates), valid at `now`."""
    certs = parse_certificates(pem, what)
    if len(certs) != 1:
        raise CaError(f"{what}: {len(certs)} certificates; give one CA certificate")
    c = certs[0]
    try:
        is_ca = c.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise CaError(f"{what} ({c.subject}) is not a CA certificate (no basic constraints CA:TRUE)")
    try:
        if not c.cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign:
            raise CaError(f"{what} ({c.subject}) may not sign certificates (its key usage lacks keyCertSign)")
    except x509.ExtensionNotFound:
        pass
    _check_valid(c, what, now)
    return c


@dataclass(frozen=True)
class BrokerCertificate:
    """A certificate chain and its key, checked, for the broker to serve."""

    leaf: Certificate
    issuer: str  # fingerprint of the fleet anchor the chain leads to
    pem: str  # chain then key: Mosquitto reads both from this one file (certfile and keyfile)


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _public_der(key: object) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined]


def check_broker_certificate(
    chain_pem: str | bytes, key_pem: str | bytes, anchors: Sequence[Certificate], now: float
) -> BrokerCertificate:
    """The broker's certificate (then any intermediates, in order) and its private key: every certificate valid
    at `now`, each issued by the next, the last issued by one of `anchors` (or being one), and the key the
    one the first certificate certifies."""
    chain = parse_certificates(chain_pem, "the broker certificate file")
    for i, c in enumerate(chain):
        _check_valid(c, "the broker certificate" if i == 0 else f"intermediate certificate {i}", now)
    key_data = key_pem.encode() if isinstance(key_pem, str) else key_pem
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except TypeError:
        raise CaError("the broker key file: the key is encrypted; give it without a passphrase") from None
    except (ValueError, UnsupportedAlgorithm):
        raise CaError("the broker key file: no PEM private key in it (or one that cannot be parsed)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
                      | ed448.Ed448PrivateKey):  # fmt: skip
        raise CaError("the broker key file: not a key a TLS server can use (EC, RSA or EdDSA)")
    leaf = chain[0]
    if _public_der(key.public_key()) != _public_der(leaf.cert.public_key()):
        raise CaError(f"the broker key does not match the broker certificate ({leaf.subject}): "
                      "it is the key of another certificate")  # fmt: skip
    for i in range(len(chain) - 1):
        if not _issued_by(chain[i].cert, chain[i + 1].cert):
            raise CaError(f"the broker certificate file: certificate {i} ({chain[i].subject}) is not issued by the "
                          f"one after it ({chain[i + 1].subject}); give the chain in order, server first")  # fmt: skip
    last = chain[-1]
    for a in anchors:
        if a.fingerprint == last.fingerprint or _issued_by(last.cert, a.cert):
            pem = "".join(c.pem for c in chain) + key_data.decode()
            return BrokerCertificate(leaf=leaf, issuer=a.fingerprint, pem=pem)
    names = "; ".join(a.subject for a in anchors) or "none"
    raise CaError(f"the broker certificate ({leaf.subject}, issued by {last.cert.issuer.rfc4514_string()}) is not "
                  f"issued by any of the fleet's CAs ({names})")  # fmt: skip


# --- the rotation's steps -----------------------------------------------------------------------------------


def phase(roles: Mapping[str, str]) -> str:
    """`roles`: anchor fingerprint -> role. steady: only current anchors; added: a next one; switched: a
    previous one."""
    present = set(roles.values())
    if NEXT in present:
        return ADDED
    if PREVIOUS in present:
        return SWITCHED
    return STEADY


# (phase, step) -> the phase after it, or a refusal (str starting "refused: "). The `switch` row is for a
# certificate from a CA the fleet hands out that is not a current one (in steady, from none: none was added);
# a certificate from a current CA is a renewal in any phase and changes no role.
STEPS: dict[tuple[str, str], str] = {
    (STEADY, "add"): ADDED,
    (ADDED, "add"): "refused: a rotation to {next} is under way: switch the broker to it and retire the old CA, "
    "or cancel it, before adding another",
    (SWITCHED, "add"): "refused: the previous CA {previous} is still handed out: retire it first",
    (STEADY, "switch"): "refused: no new CA was added: add one first (fleetctl ca add)",
    (ADDED, "switch"): SWITCHED,
    (SWITCHED, "switch"): "refused: the certificate is from the previous CA, {previous}, which the fleet is moving "
    "away from: give one from the current CA, {current}",
    (STEADY, "retire"): STEADY,
    (ADDED, "retire"): "refused: the broker still serves a certificate from the CA to be retired: switch it to "
    "{next} first (fleetctl ca switch)",
    (SWITCHED, "retire"): STEADY,
    (STEADY, "cancel"): STEADY,
    (ADDED, "cancel"): STEADY,
    (SWITCHED, "cancel"): "refused: the broker already serves a certificate from the new CA, {current}; a cancel "
    "would leave devices without it",
}


def markdown_table() -> str:
    """STEPS as the table docs/operations.md shows (tests/server/test_docs.py keeps them the same)."""
    phases = (STEADY, ADDED, SWITCHED)
    names = dict.fromkeys((CURRENT, NEXT, PREVIOUS), "CN=…")  # each CA by its subject
    out = ["| step | " + " | ".join(phases) + " |", "|---" * (len(phases) + 1) + "|"]
    for name in ("add", "switch", "retire", "cancel"):
        cells = []
        for ph in phases:
            after = STEPS[(ph, name)]
            if after.startswith("refused: "):
                cells.append("refused: " + after.removeprefix("refused: ").format(**names))
            else:
                cells.append("nothing to do" if after == ph else f"→ {after}")
        out.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(out)


def step(roles: Mapping[str, str], name: str, subjects: Mapping[str, str]) -> dict[str, str | None]:
    """The role changes `name` makes (fingerprint -> new role, None: no longer handed out), or CaError with the
    table's reason. `subjects` (fingerprint -> subject) fill the reasons in. `add` is `add:<fingerprint>`."""
    what, _, arg = name.partition(":")
    now_phase = phase(roles)
    by_role = {r: "; ".join(subjects.get(f, f) for f, x in roles.items() if x == r) for r in (CURRENT, NEXT, PREVIOUS)}
    if what == "add" and roles.get(arg) in (CURRENT, NEXT):
        return {}  # already there: nothing to do
    if what == "add" and roles.get(arg) == PREVIOUS:
        raise CaError(f"{subjects.get(arg, arg)} is the CA the fleet is moving away from: retire it first")
    after = STEPS[(now_phase, what)]
    if after.startswith("refused: "):
        raise CaError(after.removeprefix("refused: ").format(**by_role))
    if what == "add":
        return {arg: NEXT}
    if what == "switch":
        return {f: (PREVIOUS if r == CURRENT else CURRENT) for f, r in roles.items()}
    if what == "retire":
        return {f: None for f, r in roles.items() if r == PREVIOUS}
    return {f: None for f, r in roles.items() if r == NEXT}  # cancel


def choose_served(
    configured: BrokerCertificate | CaError, kept: BrokerCertificate | None, roles: Mapping[str, str]
) -> tuple[BrokerCertificate, str | None]:
    """At start: which certificate the embedded broker serves, and a line for the log (or None).
    `configured`: broker_tls_cert_file and broker_tls_key_file, checked against the anchors (or why not);
    `kept`: what the broker served when it last ran (the last switch's), if it still checks.

    The configured files win while they are from a current CA (so renewing the certificate the ordinary way,
    new files and a restart, works). A kept certificate from the next CA means a switch reached the broker
    but the server stopped before recording it: it stays, and the caller records the switch. A kept
    certificate from a current CA stays when the configured one is from another CA: the rotation moved on
    and the settings still name the old files."""
    kept_role = roles.get(kept.issuer) if kept is not None else None
    if kept is not None and kept_role == NEXT:
        return kept, f"the broker serves {kept.leaf.subject} from the next CA: a switch stopped before it was recorded; recording it now"  # noqa: E501
    conf_role = roles.get(configured.issuer) if isinstance(configured, BrokerCertificate) else None
    if isinstance(configured, BrokerCertificate) and conf_role == CURRENT:
        return configured, None
    why = str(configured) if isinstance(configured, CaError) else f"it is issued by the fleet's {conf_role} CA"
    if kept is not None and kept_role == CURRENT:
        return kept, (f"broker_tls_cert_file: {why}; the broker keeps serving {kept.leaf.subject}, which the last "
                      "`fleetctl ca switch` installed (point broker_tls_cert_file and broker_tls_key_file at it)")
    if isinstance(configured, CaError):
        raise CaError(f"broker_tls_cert_file, broker_tls_key_file: {configured}")
    raise CaError(f"broker_tls_cert_file: {why}, not by a current one, and the broker has not been switched to it: "
                  "configure the certificate from the current CA and switch with `fleetctl ca switch`")
