"""Request bodies are bounded and read only for an authenticated caller.

A pure ASGI middleware in front of the routes: a body declared larger than its route's limit gets 413 before a
byte of it is read; a body without a declared length is read at most up to the limit; and a request to
/api/v1 that carries a body is authenticated first, so a caller without a valid token gets its 401 without the
server reading (or holding) what it sent. FastAPI itself reads a route's body before its dependencies run.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from tinyfleet.server.api.deps import AUTHENTICATED, authenticate_header, refused_before_route
from tinyfleet.server.runtime import FleetRuntime
from tinyfleet.server.services.errors import ServiceError, TooLarge, Unauthorized

Message = MutableMapping[str, Any]
BUNDLE_ROUTES = ("/api/v1/bundles", "/api/v1/bundles/build")


class BodyLimit:
    def __init__(self, app: ASGIApp, runtime: FleetRuntime) -> None:
        self.app, self.runtime = app, runtime

    def limit(self, path: str) -> tuple[int, str]:
        s = self.runtime.settings
        if path in BUNDLE_ROUTES:
            return s.max_bundle_request_bytes, "max_bundle_request_bytes"
        return s.max_request_bytes, "max_request_bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path: str = scope["path"]
        limit, setting = self.limit(path)
        declared = headers.get("content-length")
        try:
            if declared is not None and (not declared.isdigit() or int(declared) > limit):
                raise TooLarge(f"request body of {declared} bytes is above the {limit}-byte limit ({setting})")
            if path.startswith("/api/v1/") and (declared not in (None, "0") or "transfer-encoding" in headers):
                # the token lookup blocks on the database: off the event loop, which must stay free to finish
                # the requests that hold the pool's connections
                await run_in_threadpool(self._authenticate, scope, headers.get("authorization", ""))
            if declared is None and "transfer-encoding" in headers:
                receive = await _read_bounded(receive, limit, setting)
        except ServiceError as exc:
            await _reply(send, exc)
            return
        await self.app(scope, receive, send)

    def _authenticate(self, scope: Scope, authorization: str) -> None:
        who = authenticate_header(self.runtime, authorization)
        if who is not None:  # the route's auth dependency takes it from here: one token lookup per request
            scope.setdefault("state", {})[AUTHENTICATED] = who
            return
        exc = Unauthorized("missing bearer token (Authorization: Bearer <token>)" if not authorization.strip()
                           else "unknown or revoked token")  # fmt: skip
        refused_before_route(self.runtime, scope["method"], self._template(scope), scope["path"],
                             "(no token)" if not authorization.strip() else "(unknown token)", exc)  # fmt: skip

    def _template(self, scope: Scope) -> str:
        app = scope.get("app")
        for route in getattr(getattr(app, "router", None), "routes", ()):
            match, _child = route.matches(scope)
            if match == Match.FULL:
                return str(getattr(route, "path", scope["path"]))
        return str(scope["path"])


async def _read_bounded(receive: Receive, limit: int, setting: str) -> Callable[[], Awaitable[Message]]:
    """Read a body of undeclared length, at most `limit` bytes of it; replay it to the app."""
    chunks, size = [], 0
    while True:
        msg = await receive()
        if msg["type"] != "http.request":
            break
        size += len(msg.get("body", b""))
        if size > limit:
            raise TooLarge(f"request body is above the {limit}-byte limit ({setting})")
        chunks.append(msg.get("body", b""))
        if not msg.get("more_body", False):
            break
    body, sent = b"".join(chunks), False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _reply(send: Send, exc: ServiceError) -> None:
    body = json.dumps({"detail": exc.message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]  # fmt: skip
    if exc.status_code == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
