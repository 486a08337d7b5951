"""The FastAPI application: routers, error translation, /healthz and /metrics."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import func, text
from sqlmodel import Session, select

from tinyfleet.bundles.profiles import load_profiles
from tinyfleet.server.api.allowed_methods import AllowedMethods
from tinyfleet.server.api.body_limit import BodyLimit
from tinyfleet.server.api.query_values import one_value_each
from tinyfleet.server.api.routes import audit as audit_routes
from tinyfleet.server.api.routes import bundles as bundle_routes
from tinyfleet.server.api.routes import devices as device_routes
from tinyfleet.server.api.routes import drift as drift_routes
from tinyfleet.server.api.routes import fleet_ca as fleet_ca_routes
from tinyfleet.server.api.routes import keys as key_routes
from tinyfleet.server.api.routes import rollouts as rollout_routes
from tinyfleet.server.api.routes import tokens as token_routes
from tinyfleet.server.api.schemas import Health
from tinyfleet.server.db import migrate
from tinyfleet.server.db.models import Device, Rollout
from tinyfleet.server.runtime import FleetRuntime
from tinyfleet.server.services.errors import ServiceError

log = logging.getLogger("tinyfleet.server.api")


def _location_part(part: object) -> str:
    text = str(part)
    return text if text.isascii() and text.isprintable() else repr(text)  # the detail stays one printable line


def _validation_message(exc: RequestValidationError) -> str:
    errs = exc.errors()
    if not errs:
        return "invalid request"
    e = errs[0]
    loc = ".".join(_location_part(p) for p in e.get("loc", ()) if p != "body") or "body"
    msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")  # a rule of ours: its message as written
    if e.get("type") in ("string_pattern_mismatch", "literal_error"):
        msg += f", not {e.get('input')!r}"
    more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
    return f"{loc}: {msg}{more}"


def _configured_rules_in_schema(app: FastAPI, reserved: frozenset[str]) -> None:
    """/openapi.json names what this server's configuration decides: the device ids it keeps for its own broker
    users, the hardware profiles it knows (TINYFLEET_PROFILES may add some)."""
    make = app.openapi

    def openapi() -> dict[str, object]:
        if app.openapi_schema is None:
            models = make()["components"]["schemas"]
            models["DeviceCreate"]["properties"]["id"]["not"] = {"enum": sorted(reserved)}
            for model in ("DeviceCreate", "BundleBuild"):
                models[model]["properties"]["hardware_class"]["enum"] = sorted(load_profiles())
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def _fleet_snapshot(rt: FleetRuntime) -> dict[str, dict[str, int]]:
    with Session(rt.engine) as s:
        by_presence = dict(s.exec(select(Device.online, func.count()).group_by(Device.online)).all())
        by_state = dict(s.exec(select(Rollout.state, func.count()).group_by(Rollout.state)).all())
    return {
        "devices": {"online": by_presence.get(True, 0), "offline": by_presence.get(False, 0)},
        "rollouts": {str(k): int(v) for k, v in by_state.items()},
    }


def _offline_docs(app: FastAPI) -> None:
    """Swagger UI at /docs with its JavaScript and CSS from the swagger-ui-bundle package (PyPI), so the page
    works on a network without internet."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs/assets", StaticFiles(directory=swagger_ui_path), name="swagger-ui-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
        )


def create_app(runtime: FleetRuntime, *, manage_runtime: bool = True) -> FastAPI:
    """`manage_runtime`: start the runtime with the app and stop it on shutdown."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if manage_runtime:
            runtime.start()
        try:
            yield
        finally:
            if manage_runtime:
                runtime.stop()

    app = FastAPI(
        title="tinyfleet fleet server",
        version="1",
        description="Devices, bundles, staged rollouts and drift for a TinyML fleet. "
        "Every /api/v1 route needs `Authorization: Bearer <token>`. OPTIONS on any path below answers 204 with "
        "`Allow` listing the path's methods; a method not listed answers 405 with the same `Allow`. A query "
        "parameter that takes one value is refused (422) when given twice.",
        lifespan=lifespan,
        dependencies=[Depends(one_value_each)],
        docs_url=None,  # served below from local assets: FastAPI's default loads them from a public CDN
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.add_middleware(BodyLimit, runtime=runtime)
    app.add_middleware(AllowedMethods, spec=lambda: app.openapi())
    _offline_docs(app)
    runtime.metrics.attach_fleet(lambda: _fleet_snapshot(runtime))

    @app.exception_handler(ServiceError)
    async def _service_error(_req: Request, exc: ServiceError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

    routers = (device_routes, bundle_routes, rollout_routes, drift_routes, token_routes, audit_routes, key_routes,
               fleet_ca_routes)
    for r in [m.router for m in routers] + [drift_routes.cohort_router]:
        app.include_router(r, prefix="/api/v1")

    @app.get("/healthz", response_model=Health, tags=["ops"], responses={503: {"model": Health}})
    def healthz() -> Response:
        db_ok, rev = True, None
        try:
            with runtime.engine.connect() as conn:
                conn.execute(text("select 1"))
            rev = migrate.current_revision(runtime.engine)
        except Exception as exc:  # the point of a health check: report, don't raise
            log.warning("health check: database unreachable: %s", exc)
            db_ok = False
        broker_ok = runtime.link.connected if runtime.link else False
        body = Health(
            status="ok" if db_ok and broker_ok else "degraded", database=db_ok, broker=broker_ok, schema_revision=rev
        )
        return JSONResponse(body.model_dump(), status_code=200 if body.status == "ok" else 503)

    @app.get(
        "/metrics",
        tags=["ops"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
    )
    def metrics() -> Response:
        return Response(runtime.metrics.render(), media_type="text/plain; version=0.0.4")

    _configured_rules_in_schema(app, runtime.credential_sink.reserved)
    return app
