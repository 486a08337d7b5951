from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from tinyfleet.server.api.deps import Filter, Operator, SessionDep
from tinyfleet.server.api.schemas import ERRORS, AuditPublic
from tinyfleet.server.services import audit

router = APIRouter(prefix="/audit", tags=["audit"], responses=ERRORS)


@router.get("", response_model=list[AuditPublic])
def list_audit(
    session: SessionDep,
    _who: Operator,
    action: Filter = None,
    actor: Filter = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> list[AuditPublic]:
    """Newest first."""
    rows = audit.list_entries(session, limit=limit, offset=offset, action=action, actor=actor)
    return [AuditPublic.model_validate(r) for r in rows]
