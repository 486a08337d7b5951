"""The fleet's broker CA rotation, kept in the database: the trust anchors handed to devices with their
credentials, which of them each device was handed, and the operator's steps (add, switch, retire, cancel),
each checked by server/broker/fleet_ca.py and applied whole or not at all."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from tinyfleet.server.broker import fleet_ca
from tinyfleet.server.broker.fleet_ca import CURRENT, NEXT, PREVIOUS, BrokerCertificate, CaError, Certificate
from tinyfleet.server.db.models import Device, FleetCa
from tinyfleet.server.services.errors import Conflict, Unavailable, Unprocessable

_steps = threading.Lock()  # one CA step at a time in this server
LACKING_SAMPLE = 20


class CertificateServer(Protocol):
    """The broker's side of a switch."""

    def served(self) -> str | None:
        """The fingerprint of the certificate the broker presents now (None: it cannot be reached)."""
        ...

    def serve(self, cert: BrokerCertificate) -> Callable[[], None]:
        """Make the broker serve `cert` and return once it presents it; returns what puts the previous one
        back. Raises (with the previous one in place) when the broker does not take it."""
        ...


def anchors(session: Session) -> list[FleetCa]:
    return list(session.exec(select(FleetCa).order_by(col(FleetCa.added_at), col(FleetCa.fingerprint))))


def _certs(rows: Sequence[FleetCa]) -> list[Certificate]:
    return [fleet_ca.parse_certificates(r.pem, f"stored CA {r.fingerprint}")[0] for r in rows]


def handout(session: Session) -> tuple[str | None, str | None]:
    """What a device is handed now: the PEM bundle of every anchor, oldest first, and the record kept on the
    device's row (its fingerprints, sorted). (None, None) when the fleet has no anchors."""
    rows = anchors(session)
    if not rows:
        return None, None
    return "".join(r.pem for r in rows), ",".join(sorted(r.fingerprint for r in rows))


def seed(session: Session, certs: Sequence[Certificate], now: float) -> int:
    """The first start with TLS: the certificates of broker_ca_file become the current anchors. Later starts
    keep what the database holds (the rotation steps change it). Returns how many were added."""
    if not certs or session.exec(select(func.count()).select_from(FleetCa)).one():
        return 0
    unique = {c.fingerprint: c for c in certs}
    for c in unique.values():
        session.add(FleetCa(fingerprint=c.fingerprint, pem=c.pem, subject=c.subject, not_after=c.not_after,
                            role=CURRENT, added_at=now))  # fmt: skip
    session.commit()
    return len(unique)


def _handed(fingerprint: str) -> object:
    return col(Device.trust_anchors).like(f"%{fingerprint}%")  # fingerprints: fixed-length hex, never a part


def count_lacking(session: Session, fingerprints: Sequence[str]) -> int:
    """Devices not handed every one of these anchors (a device handed none, or provisioned without TLS, too)."""
    if not fingerprints:
        return 0
    cond = or_(col(Device.trust_anchors).is_(None), *[~_handed(f) for f in fingerprints])  # type: ignore[operator]
    return int(session.exec(select(func.count()).select_from(Device).where(cond)).one())


@dataclass(frozen=True)
class AnchorStatus:
    fingerprint: str
    subject: str
    not_after: float
    role: str
    devices: int  # devices handed it


@dataclass(frozen=True)
class CaStatus:
    phase: str
    anchors: list[AnchorStatus]
    devices: int
    # Devices not handed the newest anchor (next while a rotation is under way, else the current ones): the
    # devices that cannot connect once the broker serves a certificate from it.
    lacking: int
    lacking_sample: list[str]  # the first of them by id


def status(session: Session) -> CaStatus:
    rows = anchors(session)
    roles = {r.fingerprint: r.role for r in rows}
    target = [f for f, r in roles.items() if r == (NEXT if NEXT in roles.values() else CURRENT)]
    out = []
    for r in rows:
        n = session.exec(select(func.count()).select_from(Device).where(_handed(r.fingerprint))).one()
        out.append(AnchorStatus(r.fingerprint, r.subject, r.not_after, r.role, int(n)))
    total = int(session.exec(select(func.count()).select_from(Device)).one())
    sample: list[str] = []
    if target:
        cond = or_(col(Device.trust_anchors).is_(None), *[~_handed(f) for f in target])  # type: ignore[operator]
        sample = list(session.exec(select(Device.id).where(cond).order_by(col(Device.id)).limit(LACKING_SAMPLE)))
    return CaStatus(fleet_ca.phase(roles), out, total, count_lacking(session, target), sample)


def _refused(exc: CaError) -> Conflict:
    return Conflict(str(exc))


def add(session: Session, pem: str, now: float) -> tuple[bool, Certificate]:
    """Hand devices `pem` (one CA certificate) besides the current anchors from now on. Returns (changed, CA):
    adding the CA that is already next is no change."""
    try:
        ca = fleet_ca.parse_ca(pem, now)
    except CaError as exc:
        raise Unprocessable(str(exc)) from None
    with _steps:
        rows = anchors(session)
        if not rows:
            raise Conflict("the fleet has no broker CA to rotate from: the server runs without broker_tls or "
                           "without broker_ca_file")  # fmt: skip
        subjects = {r.fingerprint: r.subject for r in rows} | {ca.fingerprint: ca.subject}
        try:
            changes = fleet_ca.step({r.fingerprint: r.role for r in rows}, f"add:{ca.fingerprint}", subjects)
        except CaError as exc:
            raise _refused(exc) from None
        if not changes:
            return False, ca
        session.add(FleetCa(fingerprint=ca.fingerprint, pem=ca.pem, subject=ca.subject, not_after=ca.not_after,
                            role=NEXT, added_at=now))  # fmt: skip
        session.commit()
        return True, ca


def _apply(session: Session, rows: Sequence[FleetCa], changes: dict[str, str | None]) -> None:
    for r in rows:
        if r.fingerprint not in changes:
            continue
        new = changes[r.fingerprint]
        if new is None:
            session.delete(r)
        else:
            r.role = new
            session.add(r)


def _drop(session: Session, step: str) -> list[str]:
    with _steps:
        rows = anchors(session)
        try:
            changes = fleet_ca.step({r.fingerprint: r.role for r in rows}, step,
                                    {r.fingerprint: r.subject for r in rows})  # fmt: skip
        except CaError as exc:
            raise _refused(exc) from None
        gone = [r.subject for r in rows if r.fingerprint in changes]
        _apply(session, rows, changes)
        session.commit()
        return gone


def retire(session: Session) -> list[str]:
    """Stop handing out the previous CA (after the switch). Returns the subjects retired (none: no change)."""
    return _drop(session, "retire")


def cancel(session: Session) -> list[str]:
    """Stop handing out the next CA before the broker was switched to it. Returns the subjects dropped."""
    return _drop(session, "cancel")


@dataclass(frozen=True)
class SwitchOutcome:
    kind: str  # "switched", "renewed", "unchanged"
    certificate: Certificate
    issuer: str  # subject of the CA that issued it
    lacking: int  # devices not handed that CA (a forced switch leaves them unable to connect)


def switch(session: Session, chain_pem: str, key_pem: str, *, force: bool, server: CertificateServer,
           now: float) -> SwitchOutcome:  # fmt: skip
    """Make the broker serve a certificate from the next CA (the rotation's switch) or a new one from the
    current CA (a renewal), then record the roles. Refused while devices lack the next CA unless `force`."""
    with _steps:
        rows = anchors(session)
        roles = {r.fingerprint: r.role for r in rows}
        subjects = {r.fingerprint: r.subject for r in rows}
        if not rows:
            raise Conflict("the fleet has no broker CA: the server runs without broker_tls or broker_ca_file")
        usable = [c for c in _certs(rows) if roles[c.fingerprint] in (CURRENT, NEXT)]
        try:
            cert = fleet_ca.check_broker_certificate(chain_pem, key_pem, usable, now)
        except CaError as exc:
            previous = [c for c in _certs(rows) if roles[c.fingerprint] == PREVIOUS]
            try:
                fleet_ca.check_broker_certificate(chain_pem, key_pem, previous, now)
            except CaError:
                if fleet_ca.phase(roles) == fleet_ca.STEADY:  # the table's reason, after the certificate's
                    reason = fleet_ca.STEPS[(fleet_ca.STEADY, "switch")].removeprefix("refused: ")
                    raise Unprocessable(f"{exc}; {reason}") from None
                raise Unprocessable(str(exc)) from None
            try:  # from the previous CA
                fleet_ca.step(roles, "switch", subjects)
            except CaError as refusal:
                raise _refused(refusal) from None
            raise AssertionError("a previous CA outside the switched phase") from exc  # phase() rules it out
        role = roles[cert.issuer]
        lacking = count_lacking(session, [cert.issuer])
        session.rollback()  # no connection held while the broker reloads
        if role == CURRENT:
            if server.served() == cert.leaf.fingerprint:
                return SwitchOutcome("unchanged", cert.leaf, subjects[cert.issuer], lacking)
            _serve(server, cert)
            return SwitchOutcome("renewed", cert.leaf, subjects[cert.issuer], lacking)
        try:
            changes = fleet_ca.step(roles, "switch", subjects)
        except CaError as exc:
            raise _refused(exc) from None
        if lacking and not force:
            raise Conflict(f"{lacking} device(s) were not handed the new CA ({subjects[cert.issuer]}) and could "
                           "not connect after the switch (fleetctl ca status lists them): hand it to them with new "
                           "credentials (fleetctl devices credentials ID), or switch with --force")  # fmt: skip
        undo = _serve(server, cert)
        try:
            _apply(session, anchors(session), changes)
            session.commit()
        except BaseException:
            session.rollback()
            undo()
            raise
        return SwitchOutcome("switched", cert.leaf, subjects[cert.issuer], lacking)


def _serve(server: CertificateServer, cert: BrokerCertificate) -> Callable[[], None]:
    try:
        return server.serve(cert)
    except Exception as exc:
        raise Unavailable(f"the broker did not take the certificate: {exc}; nothing was changed") from exc


def complete_switch(session: Session, issuer: str) -> bool:
    """At start: the broker serves a certificate from the next CA, so a switch got as far as the broker before
    the server stopped. Record it now. Returns whether anything changed."""
    rows = anchors(session)
    roles = {r.fingerprint: r.role for r in rows}
    if roles.get(issuer) != NEXT:
        return False
    _apply(session, rows, fleet_ca.step(roles, "switch", {}))
    session.commit()
    return True
