"""Dashboard sign-in: the API's operator token in an HttpOnly, SameSite=Strict cookie, and a CSRF token per
session.

Theory of operation. Signing in checks the token against the API's token store (services/tokens.py) and sets
the cookie `tf_session` to `<nonce>.<token>`, where the nonce is fresh for each sign-in. Every request
authenticates the token again, so a revoked token signs its sessions out at once. The CSRF token is
HMAC-SHA256(key=token, "csrf:" + nonce): pages put it in each form, every POST must bring it back, and only a
holder of the token (which no script can read) can compute it. It needs no server-side state, so it works the
same across restarts and replicas. Roles are the API's (tokens.role_allows).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs

from fastapi import Request
from sqlmodel import Session

from tinyfleet.server.runtime import FleetRuntime
from tinyfleet.server.services import tokens
from tinyfleet.server.services.errors import Forbidden

COOKIE = "tf_session"
MAX_FORM = 64 * 1024


class SignInRequired(Exception):
    """No valid session: pages redirect to the sign-in page, actions are refused."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    csrf: str

    def can(self, role: str) -> bool:
        return tokens.role_allows(self.role, role)


def csrf_for(nonce: str, token: str) -> str:
    return hmac.new(token.encode(), f"csrf:{nonce}".encode(), hashlib.sha256).hexdigest()


def new_cookie(token: str) -> str:
    return f"{secrets.token_urlsafe(16)}.{token}"


def runtime(request: Request) -> FleetRuntime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def authenticate(rt: FleetRuntime, token: str) -> tuple[str, str] | None:
    """(name, role) for a valid token, else None."""
    with Session(rt.engine) as s:
        row = tokens.authenticate(s, token)
        return (row.name, row.role) if row is not None else None


def current_user(request: Request) -> User:
    raw = request.cookies.get(COOKIE, "")
    nonce, dot, token = raw.partition(".")
    if not dot or not nonce or not token:
        raise SignInRequired()
    who = authenticate(runtime(request), token)
    if who is None:
        raise SignInRequired()
    return User(who[0], who[1], csrf_for(nonce, token))


async def form(request: Request) -> dict[str, str]:
    """A url-encoded form body, first value of each field."""
    body = await request.body()
    if len(body) > MAX_FORM:
        raise Forbidden("form too large")
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


async def acting_user(request: Request, role: str) -> tuple[User, dict[str, str]]:
    """The signed-in user of a POST whose CSRF token matches and whose role allows `role`, and the form."""
    user = current_user(request)
    fields = await form(request)
    if not hmac.compare_digest(fields.get("csrf", ""), user.csrf):
        raise Forbidden("the form's CSRF token is missing or wrong: reload the page and try again")
    if not user.can(role):
        raise Forbidden(f"role {user.role!r} may not do this; it needs {role!r}")
    return user, fields
