"""The audit log: who did what, when, and how it ended. Written in its own transaction so that a failed
action (whose own transaction rolls back) is still recorded."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from tinyfleet.server.db.models import AuditEntry
from tinyfleet.server.services.errors import ServiceError


def record(
    engine: Engine, actor: str, action: str, target: str, result: str, detail: dict[str, Any] | None = None
) -> None:
    with Session(engine) as s:
        s.add(
            AuditEntry(
                at=time.time(),
                actor=actor,
                action=action,
                target=target[:128],
                result=result[:300],
                detail=detail or {},
            )
        )
        s.commit()


@contextmanager
def audited(engine: Engine, actor: str, action: str, target: str) -> Iterator[dict[str, Any]]:
    """Record the action's outcome; the body may add details to the yielded dict."""
    detail: dict[str, Any] = {}
    try:
        yield detail
    except ServiceError as exc:
        record(engine, actor, action, target, f"refused: {exc.message}", detail)
        raise
    except Exception as exc:
        record(engine, actor, action, target, f"error: {type(exc).__name__}", detail)
        raise
    record(engine, actor, action, target, "ok", detail)


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
