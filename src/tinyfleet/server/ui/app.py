"""Mount the dashboard on the server's FastAPI app: pages under /ui/, its stylesheet, and the front-end
libraries npm installed (package.json at the repository root) under /ui/static/vendor/."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from tinyfleet.server.ui import pages

log = logging.getLogger("tinyfleet.server.ui")

STATIC = Path(__file__).with_name("static")
# `npm ci` at the repository root (make venv) installs the vendor libraries here.
VENDOR = Path(__file__).resolve().parents[4] / "node_modules"
HTMX = "htmx.org/dist/htmx.min.js"


def install(app: FastAPI, vendor_dir: Path = VENDOR) -> None:
    live = (vendor_dir / HTMX).is_file()
    if not live:
        log.warning("dashboard: %s is missing (run `make venv`): pages work, without live updates", vendor_dir / HTMX)
    app.state.ui_htmx = f"/ui/static/vendor/{HTMX}" if live else None  # pages include it when set
    # only the dashboard's own library: node_modules/ also holds the clustered broker's packages
    if (vendor_dir / "htmx.org").is_dir():
        app.mount("/ui/static/vendor/htmx.org", StaticFiles(directory=vendor_dir / "htmx.org"), name="ui-vendor")
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    app.include_router(pages.router)
