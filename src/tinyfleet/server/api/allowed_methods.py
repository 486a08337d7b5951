"""`Allow`, as /openapi.json declares it. OPTIONS on a path of the schema answers 204 with `Allow` listing the
path's methods; a method the path does not declare answers 405 with the same `Allow`. (Starlette's own 405
names only the methods of the first route matching the path: `Allow: POST` where GET exists too.)

Paths are matched the way OpenAPI reads them: a concrete path before a template that also matches it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def path_methods(spec: dict[str, Any]) -> list[tuple[re.Pattern[str], str]]:
    """(path matcher, `Allow` value) for each path of an OpenAPI document, concrete paths first."""
    out = []
    for template, item in sorted(spec.get("paths", {}).items(), key=lambda kv: kv[0].count("{")):
        methods = {m.upper() for m in item if m in HTTP_METHODS} | {"OPTIONS"}
        pattern = re.sub(r"\\{[^/}]+\\}", "[^/]+", re.escape(template))
        out.append((re.compile(pattern), ", ".join(sorted(methods))))
    return out


class AllowedMethods:
    def __init__(self, app: ASGIApp, spec: Callable[[], dict[str, Any]]) -> None:
        self.app, self.spec = app, spec
        self._paths: list[tuple[re.Pattern[str], str]] | None = None

    def allow(self, path: str) -> str | None:
        if self._paths is None:
            self._paths = path_methods(self.spec())
        return next((allow for matcher, allow in self._paths if matcher.fullmatch(path)), None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        allow = self.allow(scope["path"]) if scope["type"] == "http" else None
        if allow is None or scope["method"] in allow.split(", ") and scope["method"] != "OPTIONS":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            status, body = 204, b""
        else:
            status, body = 405, json.dumps({"detail": f"{scope['method']} is not a method of this path"}).encode()
        headers = [(b"allow", allow.encode()), (b"content-length", str(len(body)).encode())]
        if body:
            headers.append((b"content-type", b"application/json"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
