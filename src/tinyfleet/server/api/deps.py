"""FastAPI dependencies: the runtime, a database session, the caller's token and role."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, NoReturn

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from tinyfleet.server.runtime import FleetRuntime
from tinyfleet.server.services import audit, tokens
from tinyfleet.server.services.errors import Forbidden, ServiceError, Unauthorized

# Dependencies that never block are `async def`: FastAPI runs a plain `def` dependency in a worker thread, and
# each such hop costs a provisioning more than its database work does (bench/profile_provision.py).


async def get_runtime(request: Request) -> FleetRuntime:
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


# The request-state key under which the body-limit middleware leaves the principal it already authenticated.
AUTHENTICATED = "tinyfleet_principal"
_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _route_template(request: Request) -> str:
    """The route as declared, under the prefix it was included with: /api/v1/devices/{device_id}."""
    path = request.url.path
    template = getattr(request.scope.get("route"), "path", None)
    if template is None:
        return path
    try:
        concrete = template.format(**request.path_params)
    except (KeyError, IndexError, ValueError):
        return path
    return path[: len(path) - len(concrete)] + template if path.endswith(concrete) else path


def refused_before_route(
    rt: FleetRuntime, method: str, template: str, path: str, actor: str, exc: ServiceError
) -> NoReturn:
    """A mutating request refused before its route ran is audited too, by method and route; then `exc`."""
    if method in _MUTATING:
        with Session(rt.engine) as session:
            audit.record(session, actor, f"{method} {template}", path, audit.outcome(exc), {"status": exc.status_code})
    raise exc


def _refuse(rt: FleetRuntime, request: Request, actor: str, exc: ServiceError) -> NoReturn:
    refused_before_route(rt, request.method, _route_template(request), request.url.path, actor, exc)


def authenticate_header(rt: FleetRuntime, authorization: str) -> Principal | None:
    """The principal of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    with Session(rt.engine) as session:
        row = tokens.authenticate(session, token.strip())
    return Principal(row.name, row.role) if row is not None else None


async def current_principal(
    rt: RuntimeDep, request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    checked = request.scope.get("state", {}).get(AUTHENTICATED)
    if isinstance(checked, Principal):  # this request's token, looked up by the body-limit middleware
        return checked
    return await run_in_threadpool(_principal, rt, request, creds)  # the lookup blocks on the database


def _principal(rt: FleetRuntime, request: Request, creds: HTTPAuthorizationCredentials | None) -> Principal:
    if creds is None or not creds.credentials:
        _refuse(rt, request, "(no token)", Unauthorized("missing bearer token (Authorization: Bearer <token>)"))
    # A session of its own, closed here: the request's session would keep its connection while the request
    # waits for a worker thread for its endpoint, and requests holding connections without threads, behind
    # threads waiting for connections, stall each other until the pool's timeout.
    with Session(rt.engine) as session:
        row = tokens.authenticate(session, creds.credentials)
    if row is None:
        _refuse(rt, request, "(unknown token)", Unauthorized("unknown or revoked token"))
    return Principal(row.name, row.role)


def require(role: str) -> Callable[[Request, RuntimeDep, Principal], Awaitable[Principal]]:
    async def check(request: Request, rt: RuntimeDep, p: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not tokens.role_allows(p.role, role):  # the refusal is audited: a database write, off the loop
            await run_in_threadpool(_refuse, rt, request, p.name,
                                    Forbidden(f"role {p.role!r} may not do this; it needs {role!r}"))  # fmt: skip
        return p

    return check


Viewer = Annotated[Principal, Depends(require("viewer"))]
Operator = Annotated[Principal, Depends(require("operator"))]
Admin = Annotated[Principal, Depends(require("admin"))]

# A database row id in a path: bounded to what every supported database stores, so a huge number is a 422,
# not an integer overflow inside the database driver.
RolloutId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Rollout id")]
# A query filter: omitted for every row; when given, not empty (an empty value would silently mean "every row").
Filter = Annotated[str | None, Query(min_length=1, description="Only rows with this value; omit it for all")]
