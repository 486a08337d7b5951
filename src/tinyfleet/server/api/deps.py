"""FastAPI dependencies: the runtime, a database session, the caller's token and role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from tinyfleet.server.runtime import FleetRuntime
from tinyfleet.server.services import tokens
from tinyfleet.server.services.errors import Forbidden, Unauthorized


def get_runtime(request: Request) -> FleetRuntime:
    return request.app.state.runtime  # type: ignore[no-any-return]


RuntimeDep = Annotated[FleetRuntime, Depends(get_runtime)]


def get_session(rt: RuntimeDep) -> Iterator[Session]:
    with Session(rt.engine) as s:
        yield s


SessionDep = Annotated[Session, Depends(get_session)]

_bearer = HTTPBearer(auto_error=False, description="Operator token (`fleet-server create-token` or /api/v1/tokens)")


@dataclass(frozen=True)
class Principal:
    name: str
    role: str


def current_principal(
    rt: RuntimeDep, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if creds is None or not creds.credentials:
        raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
    # A session of its own, closed here: the request's session would keep its connection while the request
    # waits for a worker thread for its endpoint, and requests holding connections without threads, behind
    # threads waiting for connections, stall each other until the pool's timeout.
    with Session(rt.engine) as session:
        row = tokens.authenticate(session, creds.credentials)
        if row is None:
            raise Unauthorized("unknown or revoked token")
        return Principal(row.name, row.role)


def require(role: str) -> Callable[[Principal], Principal]:
    def check(p: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not tokens.role_allows(p.role, role):
            raise Forbidden(f"role {p.role!r} may not do this; it needs {role!r}")
        return p

    return check


Viewer = Annotated[Principal, Depends(require("viewer"))]
Operator = Annotated[Principal, Depends(require("operator"))]
Admin = Annotated[Principal, Depends(require("admin"))]

# A database row id in a path: bounded to what every supported database stores, so a huge number is a 422,
# not an integer overflow inside the database driver.
RolloutId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Rollout id")]
