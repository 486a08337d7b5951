from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query
from sqlmodel import col, select

from tinyfleet.server.api.deps import Filter, Operator, RuntimeDep, SessionDep, Viewer
from tinyfleet.server.api.schemas import (
    ERRORS,
    TOO_LARGE,
    BundleDetail,
    CalibrationBundleCreate,
    CalibrationProposal,
    CalibrationTarget,
    ChannelSummary,
    CohortPublic,
    DriftPublic,
    TagName,
)
from tinyfleet.server.db.models import DriftScore
from tinyfleet.server.services import audit, calibration
from tinyfleet.server.services.cohorts import cohorts

router = APIRouter(prefix="/drift", tags=["drift"], responses=ERRORS)


@router.get("", response_model=list[DriftPublic])
def list_drift(
    session: SessionDep, _who: Viewer, alert_only: bool = False, shift_alert_only: bool = False
) -> list[DriftPublic]:
    """Every device's drift; `alert_only`: its score is above drift_alert_threshold; `shift_alert_only`: its
    shift from its own reference window is above drift_shift_threshold (docs/operations.md, "Drift")."""
    q = select(DriftScore)
    if alert_only:
        q = q.where(DriftScore.alert == True)  # noqa: E712  (SQL expression)
    if shift_alert_only:
        q = q.where(DriftScore.shift_alert == True)  # noqa: E712  (SQL expression)
    return [DriftPublic.model_validate(d) for d in session.exec(q.order_by(col(DriftScore.score).desc()))]


@router.post("/{device_id}/calibration-bundle", status_code=201, response_model=BundleDetail, responses=TOO_LARGE)
def calibration_bundle(
    device_id: str, body: CalibrationBundleCreate, rt: RuntimeDep, session: SessionDep, who: Operator
) -> BundleDetail:
    """Build the proposed calibration-only bundle (same firmware and model, new calibration, counter + 1),
    signed with the server's signing key, and store it; roll it out like any bundle."""
    with audit.audited(session, who.name, "bundle.calibration", body.bundle_id) as detail:
        row = calibration.build_bundle(
            session, device_id, bundle_id=body.bundle_id, against=body.against, per_device=body.per_device,
            bundle_dir=rt.settings.bundle_dir, keys=rt.keys, signing_key=rt.signing_key, actor=who.name,
        )  # fmt: skip
        detail.update(base=row.gate_report["model_unchanged_from"], device=device_id)
    return BundleDetail.model_validate(row)


@router.get("/{device_id}/calibration-proposal", response_model=CalibrationProposal)
def calibration_proposal(
    device_id: str,
    session: SessionDep,
    _who: Viewer,
    against: Annotated[CalibrationTarget, Query(description="reference (default) or baseline")] = "reference",
) -> CalibrationProposal:
    """A calibration-only bundle's calibration: same firmware and model, new offsets and gains that map the
    device's newest window back onto its own reference window (its first on the bundle: what changed on this
    device since) or, with `against=baseline`, onto the bundle's validation baseline (docs/operations.md,
    "Drift"). Build and sign it with `fleetctl bundle build` (security counter + 1), upload it and roll it out
    like any bundle."""
    return CalibrationProposal.model_validate(asdict(calibration.propose(session, device_id, against)))


cohort_router = APIRouter(prefix="/cohorts", tags=["drift"], responses=ERRORS)


@cohort_router.get("", response_model=list[CohortPublic])
def list_cohorts(
    session: SessionDep,
    _who: Viewer,
    bundle_id: Filter = None,
    by: Annotated[list[TagName], Query(description="Tag names that define a cohort (repeat)", max_length=8)] = [],  # noqa: B006
) -> list[CohortPublic]:
    """Telemetry totals per (bundle, tag values): alarm rate, confidence histogram, input statistics, drift."""
    return [
        CohortPublic(
            bundle_id=c.bundle_id, cohort=c.cohort, devices=c.devices, windows=c.windows, inferences=c.inferences,
            alarm_rate=c.alarm_rate, confidence_hist=c.confidence_hist,
            channels=[ChannelSummary(**s) for s in c.channel_stats()], drift_alerts=c.drift_alerts,
            max_drift=c.max_drift,
        )
        for c in cohorts(session, bundle_id, by)
    ]  # fmt: skip
