from __future__ import annotations

from fastapi import APIRouter

from tinyfleet.server.api.deps import RuntimeDep, SessionDep, Viewer
from tinyfleet.server.api.schemas import ERRORS, KeyPublic
from tinyfleet.server.services import signing_keys

router = APIRouter(prefix="/keys", tags=["keys"], responses=ERRORS)


@router.get("", response_model=list[KeyPublic])
def list_keys(rt: RuntimeDep, session: SessionDep, _who: Viewer) -> list[KeyPublic]:
    """Signing keys: which the server accepts, which bundles each signed, how many devices are known to trust it
    (services/signing_keys.py says how the server knows)."""
    server = [kid.hex() for kid in rt.keys.keys]
    return [KeyPublic.model_validate(e) for e in signing_keys.fleet_keys(session, server)]
