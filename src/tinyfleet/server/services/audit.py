"""The audit log: who did what, when, and how it ended. A failed action is recorded too: its own changes are
rolled back first, then the entry is committed.

The entry is written through the request's own session, so a request never holds two database connections
at once: with a second session per request, requests that held their connection while waiting for one for
the audit entry could take the whole pool and wait on each other until the pool's timeout."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlmodel import Session, col, select

from tinyfleet.server.db.models import AuditEntry
from tinyfleet.server.services.errors import ServiceError


def record(
    session: Session, actor: str, action: str, target: str, result: str, detail: dict[str, Any] | None = None
) -> None:
    session.add(
        AuditEntry(
            at=time.time(),
            actor=actor,
            action=action,
            target=target[:128],
            result=result[:300],
            detail=detail or {},
        )
    )
    session.commit()


def outcome(exc: ServiceError) -> str:
    """`refused: ...` when the caller asked for something not allowed or not possible (4xx), `failed: ...`
    when a part the server depends on failed and nothing was changed (5xx)."""
    return f"{'failed' if exc.status_code >= 500 else 'refused'}: {exc.message}"


@contextmanager
def audited(session: Session, actor: str, action: str, target: str) -> Iterator[dict[str, Any]]:
    """Record the action's outcome; the body may add details to the yielded dict."""
    detail: dict[str, Any] = {}
    try:
        yield detail
    except ServiceError as exc:
        session.rollback()
        record(session, actor, action, target, outcome(exc), detail)
        raise
    except Exception as exc:
        session.rollback()
        record(session, actor, action, target, f"error: {type(exc).__name__}: {exc}", detail)
        raise
    record(session, actor, action, target, "ok", detail)


def list_entries(
    session: Session, *, limit: int = 100, offset: int = 0, action: str | None = None, actor: str | None = None
) -> list[AuditEntry]:
    q = select(AuditEntry)
    if action:
        q = q.where(AuditEntry.action == action)
    if actor:
        q = q.where(AuditEntry.actor == actor)
    q = q.order_by(col(AuditEntry.id).desc()).offset(offset).limit(limit)
    return list(session.exec(q))
