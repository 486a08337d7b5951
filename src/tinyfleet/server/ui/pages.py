"""The dashboard's pages and actions. Each handler reads through the service layer and renders a template;
actions check the session's CSRF token and the API's role, and are audit-logged like the API's.

Errors: a ServiceError (unknown id, bad filter, conflict) renders an error page with its 4xx status; a page
asked for without a session redirects to the sign-in page.
"""

from __future__ import annotations

import math
import secrets
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from sqlmodel import Session

from tinyfleet.server.db.models import Bundle, DriftScore, TelemetryAggregate
from tinyfleet.server.runtime import FleetRuntime
from tinyfleet.server.services import audit, bundles, calibration, cohorts, devices, rollout_view
from tinyfleet.server.services import rollouts as rollout_svc
from tinyfleet.server.services.errors import BadRequest, Forbidden, NotFound, ServiceError
from tinyfleet.server.ui import charts
from tinyfleet.server.ui.auth import (
    COOKIE,
    SignInRequired,
    User,
    acting_user,
    authenticate,
    current_user,
    form,
    new_cookie,
    runtime,
)

templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
PRE = "tf_signin"  # the sign-in form's own CSRF cookie (double submit): no session exists yet
PAGE = 50
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _when(t: float | None) -> str:
    if not t:
        return "-"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


templates.env.filters["when"] = _when
templates.env.globals["urlencode"] = urlencode


def render(request: Request, name: str, http_status: int = 200, **ctx: Any) -> HTMLResponse:
    ctx["htmx"] = getattr(request.app.state, "ui_htmx", None)
    resp = templates.TemplateResponse(request, name, ctx, status_code=http_status)
    resp.headers.update(SECURITY_HEADERS)
    return resp


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    try:
        user: User | None = current_user(request)
    except SignInRequired:
        user = None
    return render(request, "error.html", status, user=user, status=status, message=message)


class UiRoute(APIRoute):
    """Turns the services' errors into HTML pages and a missing session into a redirect to sign in."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def h(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                if request.method != "GET":
                    return error_page(request, 401, "not signed in (or the session ended): sign in again")
                nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                if request.headers.get("HX-Request"):  # htmx polling a page's live part: move the whole page
                    return Response(headers={"HX-Redirect": f"/ui/signin?next={quote(nxt.removesuffix('/live'))}"})
                return RedirectResponse(f"/ui/signin?next={quote(nxt)}", 303)
            except ServiceError as exc:
                return error_page(request, exc.status_code, exc.message)
            except RequestValidationError as exc:
                e = (exc.errors() or [{}])[0]
                where = ".".join(str(p) for p in e.get("loc", ()))
                return error_page(request, 400, f"{where}: {e.get('msg', 'invalid')}")

        return h


router = APIRouter(prefix="/ui", route_class=UiRoute, include_in_schema=False)
UserDep = Annotated[User, Depends(current_user)]


def _session(request: Request) -> Session:
    return Session(runtime(request).engine)


def _rollout_id(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 2**63 - 1:
        raise NotFound(f"no rollout {raw!r}")
    return int(raw)


def _int(raw: str | None, name: str, default: int, lo: int = 1, hi: int = 10**6) -> int:
    if raw in (None, ""):
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise BadRequest(f"{name} must be a whole number from {lo} to {hi}")
    return int(raw)


# --- sign in and out -----------------------------------------------------------------------------------------


def _safe_next(nxt: str | None) -> str:
    return nxt if nxt and nxt.startswith("/ui/") and not nxt.startswith("//") else "/ui/fleet"


@router.get("/signin")
def signin_page(request: Request, next: str | None = None) -> Response:  # noqa: A002
    return _signin_form(request, next, None)


def _signin_form(request: Request, nxt: str | None, error: str | None) -> Response:
    pre = request.cookies.get(PRE) or secrets.token_urlsafe(16)
    resp = render(request, "signin.html", 401 if error else 200, user=None, pre=pre, next=_safe_next(nxt),
                  error=error)  # fmt: skip
    resp.set_cookie(PRE, pre, httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/ui")
    return resp


@router.post("/signin")
async def signin(request: Request) -> Response:
    f = await form(request)
    pre = request.cookies.get(PRE, "")
    if not pre or f.get("pre") != pre:
        return error_page(request, 403, "the sign-in form expired or came from another site: reload it")
    token = f.get("token", "").strip()
    who = authenticate(runtime(request), token) if token else None
    if who is None:
        return _signin_form(request, f.get("next"), "unknown or revoked token")
    resp = RedirectResponse(_safe_next(f.get("next")), 303)
    resp.set_cookie(COOKIE, new_cookie(token), httponly=True, samesite="strict", secure=request.url.scheme == "https",
                    path="/ui")  # fmt: skip
    resp.delete_cookie(PRE, path="/ui")
    return resp


@router.post("/signout")
async def signout(request: Request) -> Response:
    await acting_user(request, "viewer")
    resp = RedirectResponse("/ui/signin", 303)
    resp.delete_cookie(COOKIE, path="/ui")
    return resp


@router.get("")
@router.get("/")
def home() -> Response:
    return RedirectResponse("/ui/fleet", 303)


# --- fleet ---------------------------------------------------------------------------------------------------


@router.get("/fleet")
def fleet(request: Request, user: UserDep) -> Response:
    q = request.query_params
    tags: dict[str, str] = {}
    for t in q.getlist("tag"):
        if not t:
            continue
        k, sep, v = t.partition("=")
        if not sep or not k:
            raise BadRequest(f"tag filter {t!r} must look like name=value")
        tags[k] = v
    presence = q.get("presence") or None
    if presence not in (None, "online", "offline"):
        raise BadRequest(f"presence {presence!r} must be online or offline")
    f = devices.DeviceFilter(hardware_class=q.get("hardware_class") or None, bundle=q.get("bundle") or None,
                             state=q.get("state") or None, online=None if presence is None else presence == "online",
                             tags=tags)  # fmt: skip
    page = _int(q.get("page"), "page", 1)
    t0 = time.perf_counter()
    with _session(request) as s:
        fp = devices.fleet_page(s, f, limit=PAGE, offset=(page - 1) * PAGE)
        classes = devices.hardware_classes(s)
        all_bundles = [b.bundle_id for b in bundles.list_bundles(s)]
    pages = max(1, math.ceil(fp.total / PAGE))
    keep = [(k, v) for k, v in q.multi_items() if k != "page" and v]
    return render(request, "fleet.html", user=user, fp=fp, f=f, presence=presence, tag=" ".join(
        f"{k}={v}" for k, v in tags.items()), classes=classes, bundles=all_bundles, page=page, pages=pages,
        keep=keep, query_ms=(time.perf_counter() - t0) * 1000)  # fmt: skip


# --- rollouts ------------------------------------------------------------------------------------------------


@router.get("/rollouts")
def rollouts(request: Request, user: UserDep, state: str | None = None) -> Response:
    with _session(request) as s:
        rows = rollout_view.summaries(s, state or None)
    return render(request, "rollouts.html", user=user, rows=rows, state=state or "")


def _detail(request: Request, raw: str) -> rollout_view.RolloutDetail:
    with _session(request) as s:
        d = rollout_view.detail(s, _rollout_id(raw))
        s.expunge_all()
    return d


@router.get("/rollouts/{rid}")
def rollout(request: Request, rid: str, user: UserDep) -> Response:
    return render(request, "rollout.html", user=user, d=_detail(request, rid))


@router.get("/rollouts/{rid}/live")
def rollout_live(request: Request, rid: str, user: UserDep) -> Response:
    """The live part of the rollout page alone: what htmx polls and swaps in."""
    return render(request, "_rollout_live.html", user=user, d=_detail(request, rid))


ACTIONS = {"pause": "Pause", "resume": "Resume", "abort": "Abort"}


def _action(raw: str) -> str:
    if raw not in ACTIONS:
        raise NotFound(f"no rollout action {raw!r}")
    return raw


@router.get("/rollouts/{rid}/{action}")
def confirm_action(request: Request, rid: str, action: str, user: UserDep) -> Response:
    """The confirmation step of an action (a page, so it works without JavaScript)."""
    act = _action(action)
    if not user.can("operator"):
        raise Forbidden(f"role {user.role!r} may not {act} rollouts; it needs 'operator'")
    d = _detail(request, rid)
    return render(request, "confirm.html", user=user, d=d, action=act, label=ACTIONS[act])


@router.post("/rollouts/{rid}/{action}")
async def do_action(request: Request, rid: str, action: str) -> Response:
    act = _action(action)
    user, fields = await acting_user(request, "operator")
    rollout_id = _rollout_id(rid)
    rt: FleetRuntime = runtime(request)

    def run() -> None:
        with _session(request) as s, audit.audited(s, user.name, f"rollout.{act}", str(rollout_id)) as detail:
            detail["via"] = "dashboard"
            if act == "pause":
                rollout_svc.pause(s, rollout_id)
            elif act == "resume":
                rollout_svc.resume(s, rollout_id)
                rt.rollouts.poke()
            else:
                rollback = fields.get("rollback", "") == "on"
                detail["rollback"] = rollback
                rt.rollouts.abort(rollout_id, user.name, rollback)

    await run_in_threadpool(run)
    return RedirectResponse(f"/ui/rollouts/{rollout_id}", 303)


# --- devices -------------------------------------------------------------------------------------------------


def _drift_charts(points: list[devices.TelemetryPoint], ds: DriftScore | None, threshold: float
                  ) -> list[charts.LineChart]:  # fmt: skip
    if ds is not None:  # the chart compares windows on the bundle the reference was taken on
        points = [p for p in points if p.bundle_id == ds.bundle_id]
    n = max((len(p.channels) for p in points), default=0)
    out = []
    for c in range(n):
        pts = [p for p in points if len(p.channels) > c]
        ref = ds.reference[c] if ds is not None and c < len(ds.reference) else None
        out.append(charts.drift_chart(
            f"channel {c}", [_when(p.received_at) for p in pts], [p.channels[c]["mean"] for p in pts],
            [p.channels[c]["std"] for p in pts], ref["mean"] if ref else None, ref["std"] if ref else None,
            threshold, [f"{p.epoch}:{p.seq}" for p in pts]))  # fmt: skip
    return out


@router.get("/devices/{device_id}")
def device(request: Request, device_id: str, user: UserDep) -> Response:
    rt = runtime(request)
    with _session(request) as s:
        dev = devices.get(s, device_id)
        reports = devices.reports(s, device_id, 500, 0)
        points = devices.telemetry(s, device_id, 200)
        ds = s.get(DriftScore, device_id)
        running = s.get(Bundle, dev.running_bundle) if dev.running_bundle else None
        running_manifest = running.manifest if running is not None else None
        agg = s.get(TelemetryAggregate, (device_id, dev.running_bundle)) if dev.running_bundle else None
        try:
            proposal: calibration.Proposal | None = calibration.propose(s, device_id)
            no_proposal = None
        except ServiceError as exc:
            proposal, no_proposal = None, exc.message
        s.expunge_all()
    threshold = rt.settings.drift_shift_threshold
    last = points[-1] if points else None
    hist = list(agg.confidence_hist) if agg is not None else (last.confidence_hist if last else [])
    hist_chart = charts.histogram(f"model confidence histogram on {agg.bundle_id if agg else 'the last window'} "
                                  "(bins low to high confidence)", hist, [f"bin {i}" for i in range(len(hist))])
    p99 = [p.latency_p99_us for p in points if p.latency_p99_us is not None]
    max_ms = _max_latency_ms(running_manifest) if running_manifest else None
    lat_chart = charts.series("inference latency p99 (µs) per window", [_when(p.received_at) for p in points
                              if p.latency_p99_us is not None], p99, max_ms * 1000 if max_ms else None, "µs")
    return render(request, "device.html", user=user, dev=dev, reports=reports, points=points, last=last, ds=ds,
                  drift_charts=_drift_charts(points, ds, threshold), threshold=threshold,
                  alert_threshold=rt.settings.drift_alert_threshold, hist=hist_chart, agg=agg, latency=lat_chart,
                  p99_max=max(p99) if p99 else None, proposal=proposal, no_proposal=no_proposal,
                  can_sign=rt.signing_key is not None,
                  suggested_id=_suggested_id(proposal, device_id))  # fmt: skip


def _max_latency_ms(manifest: dict[str, Any]) -> float | None:
    v = manifest.get("deployment", {}).get("max_latency_ms")
    return float(v) if v else None


def _suggested_id(proposal: calibration.Proposal | None, device_id: str) -> str:
    base = proposal.base_bundle if proposal else "bundle"
    return f"{base[:40]}-cal-{device_id}"[:64]


@router.post("/devices/{device_id}/calibration-bundle")
async def build_calibration(request: Request, device_id: str) -> Response:
    user, fields = await acting_user(request, "operator")
    rt = runtime(request)
    bundle_id = fields.get("bundle_id", "").strip()
    against = fields.get("against", "reference")
    if against not in ("reference", "baseline"):
        raise BadRequest(f"against {against!r} must be reference or baseline")
    if not bundle_id:
        raise BadRequest("the new bundle needs an id")

    def run() -> str:
        with _session(request) as s, audit.audited(s, user.name, "bundle.calibration", bundle_id) as detail:
            row = calibration.build_bundle(
                s, device_id, bundle_id=bundle_id, against=against,  # type: ignore[arg-type]
                per_device=fields.get("per_device", "") == "on", bundle_dir=rt.settings.bundle_dir, keys=rt.keys,
                signing_key=rt.signing_key, actor=user.name,
            )  # fmt: skip
            detail.update(base=row.gate_report["model_unchanged_from"], device=device_id, via="dashboard")
            return row.bundle_id

    bid = await run_in_threadpool(run)
    return RedirectResponse(f"/ui/bundles/{quote(bid)}", 303)


# --- bundles -------------------------------------------------------------------------------------------------


@router.get("/bundles")
def bundle_list(request: Request, user: UserDep) -> Response:
    with _session(request) as s:
        rows = bundles.list_bundles(s)
        s.expunge_all()
    return render(request, "bundles.html", user=user, rows=rows)


def _gate_view(gate_report: dict[str, Any]) -> dict[str, Any]:
    """The gate report's checks, and its per-layer saturation as a chart; a calibration-only bundle shows its
    base bundle's report."""
    base_of = gate_report.get("model_unchanged_from")
    rep = gate_report.get("base_gate_report", gate_report) if base_of else gate_report
    full = rep.get("report") or {}
    checks = full.get("checks") or [{"name": k, "status": v, "figure": "", "detail": ""}
                                     for k, v in (rep.get("checks") or {}).items()]  # fmt: skip
    sat = next((c for c in checks if c["name"] == "saturation" and c.get("data", {}).get("layers")), None)
    sat_chart = None
    if sat is not None:
        sat_chart = charts.hbars("per-layer saturation (share of outputs at the int8 limit)",
                                 [(f"{p['layer']}", p["share"]) for p in sat["data"]["layers"]],
                                 sat["data"].get("max"))  # fmt: skip
    strata = full.get("strata") or {}
    single = {k: v for k, v in strata.items() if "&" not in k}  # one tag each; the combinations are in the API
    return {"base_of": base_of, "passed": rep.get("passed"), "skipped": rep.get("skipped"), "checks": checks,
            "full": full, "sat": sat_chart, "strata": single, "combined": len(strata) - len(single)}  # fmt: skip


@router.get("/bundles/{bundle_id}")
def bundle(request: Request, bundle_id: str, user: UserDep) -> Response:
    with _session(request) as s:
        row = bundles.get(s, bundle_id)
        s.expunge_all()
    return render(request, "bundle.html", user=user, b=row, m=row.manifest, gate=_gate_view(row.gate_report))


# --- drift and audit -----------------------------------------------------------------------------------------


@router.get("/drift")
def drift(request: Request, user: UserDep, by: str = "", sort: str = "shift", order: str = "desc") -> Response:
    if order not in ("asc", "desc"):
        raise BadRequest(f"order {order!r} must be asc or desc")
    with _session(request) as s:
        names = cohorts.tag_names(s)
        if by and by not in names:
            raise BadRequest(f"no device has a tag named {by!r}; cohorts by: {', '.join(names) or 'none'}")
        rows = cohorts.flagged(s, by or None, sort, order == "desc")
    per_cohort = sorted(Counter(r.cohort for r in rows).items())
    return render(request, "drift.html", user=user, rows=rows, by=by, names=names, sort=sort, order=order,
                  per_cohort=per_cohort,
                  shift_threshold=runtime(request).settings.drift_shift_threshold,
                  alert_threshold=runtime(request).settings.drift_alert_threshold)  # fmt: skip


@router.get("/audit")
def audit_log(request: Request, user: UserDep, action: str = "", actor: str = "", page: str = "") -> Response:
    if not user.can("operator"):  # as GET /api/v1/audit
        raise Forbidden(f"role {user.role!r} may not read the audit log; it needs 'operator'")
    n = _int(page, "page", 1)
    with _session(request) as s:
        rows = audit.list_entries(s, limit=PAGE + 1, offset=(n - 1) * PAGE, action=action or None,
                                  actor=actor or None)  # fmt: skip
    return render(request, "audit.html", user=user, rows=rows[:PAGE], more=len(rows) > PAGE, page=n, action=action,
                  actor=actor)  # fmt: skip

