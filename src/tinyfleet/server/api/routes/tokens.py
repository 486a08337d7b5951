from __future__ import annotations

from fastapi import APIRouter, status

from tinyfleet.server.api.deps import Admin, RuntimeDep, SessionDep
from tinyfleet.server.api.schemas import ERRORS, TOO_LARGE, TokenCreate, TokenCreated, TokenPublic
from tinyfleet.server.services import audit, tokens

router = APIRouter(prefix="/tokens", tags=["tokens"], responses=ERRORS)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TokenCreated, responses=TOO_LARGE)
def create_token(body: TokenCreate, rt: RuntimeDep, session: SessionDep, who: Admin) -> TokenCreated:
    with audit.audited(session, who.name, "token.create", body.name) as detail:
        detail["role"] = body.role
        row, secret = tokens.create(session, body.name, body.role)
    return TokenCreated(token=TokenPublic.model_validate(row), secret=secret)


@router.get("", response_model=list[TokenPublic])
def list_tokens(session: SessionDep, _who: Admin) -> list[TokenPublic]:
    return [TokenPublic.model_validate(t) for t in tokens.list_tokens(session)]


@router.delete("/{name}", response_model=TokenPublic)
def revoke_token(name: str, rt: RuntimeDep, session: SessionDep, who: Admin) -> TokenPublic:
    with audit.audited(session, who.name, "token.revoke", name):
        return TokenPublic.model_validate(tokens.revoke(session, name))
