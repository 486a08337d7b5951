from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from tinyfleet.server.api.deps import Filter, Operator, RolloutId, RuntimeDep, SessionDep, Viewer
from tinyfleet.server.api.schemas import (
    ERRORS,
    TOO_LARGE,
    RolloutCounts,
    RolloutCreate,
    RolloutDevicePublic,
    RolloutPublic,
    RolloutStatus,
)
from tinyfleet.server.db.models import Rollout
from tinyfleet.server.services import audit
from tinyfleet.server.services import rollouts as svc
from tinyfleet.server.services.errors import BadRequest

router = APIRouter(prefix="/rollouts", tags=["rollouts"], responses=ERRORS)


def _status(session: SessionDep, ro: Rollout) -> RolloutStatus:
    assert ro.id is not None
    return RolloutStatus(
        rollout=RolloutPublic.model_validate(ro),
        counts=RolloutCounts(**svc.counts(session, ro.id)),
        failures=svc.failures(session, ro.id),
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=RolloutStatus, responses=TOO_LARGE)
def create_rollout(body: RolloutCreate, rt: RuntimeDep, session: SessionDep, who: Operator) -> RolloutStatus:
    """Start a staged rollout. Devices of another hardware class than the bundle's are never targeted."""
    with audit.audited(session, who.name, "rollout.create", body.bundle_id) as detail:
        try:
            stages = [svc.stage_from_json(s.model_dump()) for s in body.stages]
        except (TypeError, ValueError) as exc:
            raise BadRequest(f"stages: {exc}") from exc
        ro, excluded = svc.create(
            session,
            bundle_id=body.bundle_id,
            hardware_class=body.target.hardware_class,
            tags=body.target.tags,
            device_ids=body.target.device_ids,
            stages=stages,
            stratify_by=body.stratify_by,
            rollback_on_halt=body.rollback_on_halt,
            actor=who.name,
            skip_busy=body.target.skip_busy,
            allow_untrusted_key=body.allow_untrusted_key,
        )
        detail.update(rollout=ro.id, excluded=ro.target["excluded_counts"])
    rt.rollouts.poke()
    return _status(session, ro)


@router.get("", response_model=list[RolloutStatus])
def list_rollouts(session: SessionDep, _who: Viewer, state: Filter = None) -> list[RolloutStatus]:
    return [_status(session, r) for r in svc.list_rollouts(session, state)]


@router.get("/{rollout_id}", response_model=RolloutStatus)
def get_rollout(rollout_id: RolloutId, session: SessionDep, _who: Viewer) -> RolloutStatus:
    return _status(session, svc.get(session, rollout_id))


@router.get("/{rollout_id}/devices", response_model=list[RolloutDevicePublic])
def rollout_devices(rollout_id: RolloutId, session: SessionDep, _who: Viewer) -> list[RolloutDevicePublic]:
    svc.get(session, rollout_id)
    return [RolloutDevicePublic.model_validate(rd) for rd in svc.devices_of(session, rollout_id)]


@router.post("/{rollout_id}/pause", response_model=RolloutStatus)
def pause_rollout(rollout_id: RolloutId, rt: RuntimeDep, session: SessionDep, who: Operator) -> RolloutStatus:
    with audit.audited(session, who.name, "rollout.pause", str(rollout_id)):
        ro = svc.pause(session, rollout_id)
    return _status(session, ro)


@router.post("/{rollout_id}/resume", response_model=RolloutStatus)
def resume_rollout(rollout_id: RolloutId, rt: RuntimeDep, session: SessionDep, who: Operator) -> RolloutStatus:
    with audit.audited(session, who.name, "rollout.resume", str(rollout_id)):
        ro = svc.resume(session, rollout_id)
    rt.rollouts.poke()
    return _status(session, ro)


@router.post("/{rollout_id}/abort", response_model=RolloutStatus)
def abort_rollout(
    rollout_id: RolloutId,
    rt: RuntimeDep,
    session: SessionDep,
    who: Operator,
    rollback: Annotated[bool, Query(description="Return touched devices to their previous bundle")] = True,
) -> RolloutStatus:
    with audit.audited(session, who.name, "rollout.abort", str(rollout_id)) as detail:
        detail["rollback"] = rollback
        ro = rt.rollouts.abort(rollout_id, who.name, rollback)
    return _status(session, ro)
