"""Operator tokens with roles. Only a SHA-256 of each token is stored; the token is shown once."""

from __future__ import annotations

import hashlib
import re
import secrets
import time

from sqlmodel import Session, col, select

from tinyfleet.server.db.models import OperatorToken
from tinyfleet.server.services.errors import BadRequest, Conflict, NotFound

ROLES = ("viewer", "operator", "admin")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")  # full match


def role_allows(role: str, needed: str) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(session: Session, name: str, role: str, token: str | None = None) -> tuple[OperatorToken, str]:
    if role not in ROLES:
        raise BadRequest(f"role {role!r} is not one of {', '.join(ROLES)}")
    if not NAME_RE.fullmatch(name):
        raise BadRequest(f"token name {name!r} must be 1-64 of A-Z a-z 0-9 . _ @ -")
    if session.exec(select(OperatorToken).where(OperatorToken.name == name)).first():
        raise Conflict(f"a token named {name!r} already exists")
    clear = token or "tft_" + secrets.token_urlsafe(32)
    row = OperatorToken(name=name, role=role, token_hash=_digest(clear), created_at=time.time())
    session.add(row)
    session.commit()
    session.refresh(row)
    return row, clear


def ensure_bootstrap(session: Session, token: str) -> None:
    """Make `token` a valid admin token named `bootstrap-admin` (idempotent across restarts)."""
    row = session.exec(select(OperatorToken).where(OperatorToken.name == "bootstrap-admin")).first()
    if row is None:
        create(session, "bootstrap-admin", "admin", token)
    elif row.token_hash != _digest(token) or row.revoked_at is not None:
        row.token_hash, row.revoked_at, row.role = _digest(token), None, "admin"
        session.add(row)
        session.commit()


def authenticate(session: Session, token: str) -> OperatorToken | None:
    row = session.exec(select(OperatorToken).where(OperatorToken.token_hash == _digest(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    return row


def list_tokens(session: Session) -> list[OperatorToken]:
    return list(session.exec(select(OperatorToken).order_by(OperatorToken.name)))


def revoke(session: Session, name: str) -> OperatorToken:
    row = session.exec(select(OperatorToken).where(OperatorToken.name == name)).first()
    if row is None:
        raise NotFound(f"no token named {name!r}")
    if row.revoked_at is None and row.role == "admin" and _live_admins(session) == 1:
        raise Conflict(f"token {name!r} is the last admin token: create another admin token before revoking it")
    if row.revoked_at is None:
        row.revoked_at = time.time()
        session.add(row)
        session.commit()
        session.refresh(row)
    return row


def _live_admins(session: Session) -> int:
    rows = session.exec(
        select(OperatorToken.id).where(OperatorToken.role == "admin", col(OperatorToken.revoked_at).is_(None))
    )
    return len(rows.all())
