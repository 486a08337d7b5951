"""/docs works without internet: Swagger UI's page names only assets the server itself serves."""

from __future__ import annotations

import re
from pathlib import Path

from ..srv_fleet import Fleet


def test_swagger_ui_loads_from_the_server(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path, f"sqlite:///{tmp_path / 'fleet.db'}")
    with fleet.server() as (http, _rt):
        page = http.get("/docs")
        assert page.status_code == 200
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: ?["']([^"']+)["']""", page.text)
        urls = [a or b for a, b in urls]
        assert urls and not [u for u in urls if "//" in u], urls  # nothing from another host
        assert "/docs/assets/swagger-ui-bundle.js" in urls and "/docs/assets/swagger-ui.css" in urls
        for u in urls:
            r = http.get(u)
            assert r.status_code == 200 and r.content, u
        assert "SwaggerUIBundle" in http.get("/docs/assets/swagger-ui-bundle.js").text
