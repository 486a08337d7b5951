"""A small client for the fleet server's REST API: bearer token, one-line errors, exit codes."""

from __future__ import annotations

import json
from typing import Any, NoReturn

import httpx
import typer

from .errors import EXIT_REFUSED, EXIT_USAGE, fail
from .output import print_json

__all__ = ["SERVER_OPT", "TOKEN_OPT", "ApiClient", "detail", "parse_tags", "print_json"]

SERVER_OPT = typer.Option(
    "http://127.0.0.1:8080", "--server", envvar="TINYFLEET_SERVER", help="Fleet server URL (env TINYFLEET_SERVER)."
)
TOKEN_OPT = typer.Option(
    None, "--token", envvar="TINYFLEET_TOKEN", help="Operator token (env TINYFLEET_TOKEN).", show_default=False
)


class ApiClient:
    def __init__(self, server: str, token: str | None, timeout: float = 120.0) -> None:
        if not token:
            fail("no operator token: pass --token or set TINYFLEET_TOKEN (fleet-server create-token)")
        self.server = server.rstrip("/")
        self._http = httpx.Client(
            base_url=self.server + "/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )

    def _fail_http(self, r: httpx.Response) -> NoReturn:
        code = EXIT_REFUSED if r.status_code in (409, 422) else EXIT_USAGE
        fail(f"server said {r.status_code}: {detail(r)}", code)

    def request(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            fail(f"cannot reach the fleet server at {self.server}: {exc}")
        if r.status_code >= 400:
            self._fail_http(r)
        return r.json() if r.content else None

    def poll(self, path: str, **kw: Any) -> Any | None:
        """GET for a loop that outlives server restarts: None while the server is unreachable or answers 5xx."""
        try:
            r = self._http.get(path, **kw)
        except httpx.HTTPError:
            return None
        if r.status_code >= 500:
            return None
        if r.status_code >= 400:
            self._fail_http(r)
        return r.json() if r.content else None

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """The raw response (for commands that go on after one refusal); an unreachable server still fails."""
        try:
            return self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            fail(f"cannot reach the fleet server at {self.server}: {exc}")

    def get_all(self, path: str, params: dict[str, Any] | None = None, page: int = 1000) -> list[Any]:
        """Every row of a list endpoint that pages with limit/offset (the API returns at most `page` at once)."""
        rows: list[Any] = []
        while True:
            got = self.get(path, params={**(params or {}), "limit": page, "offset": len(rows)})
            rows += got
            if len(got) < page:
                return rows

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.request("POST", path, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)


def detail(r: httpx.Response) -> str:
    """The API's one-line `detail` of an error response."""
    try:
        return str(r.json().get("detail", r.text))
    except (json.JSONDecodeError, AttributeError):
        return r.text.strip() or r.reason_phrase


def parse_tags(tags: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for t in tags:
        k, sep, v = t.partition("=")
        if not sep or not k or not v:
            fail(f"--tag {t!r} must look like name=value")
        out[k] = v
    return out
