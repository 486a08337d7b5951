from __future__ import annotations

import binascii
from base64 import b64decode
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.concurrency import run_in_threadpool

from tinyfleet.server.api.deps import Filter, Operator, RuntimeDep, SessionDep, Viewer
from tinyfleet.server.api.schemas import (
    ERRORS,
    TOO_LARGE,
    BundleBuild,
    BundleDetail,
    BundlePublic,
    BundleRetired,
    ErrorOut,
    KeyId,
)
from tinyfleet.server.services import audit, bundle_builder, bundles, publishing
from tinyfleet.server.services.errors import BadRequest, Conflict

router = APIRouter(prefix="/bundles", tags=["bundles"], responses=ERRORS)

_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary", "minLength": 1}}},
    }
}
# What a schema cannot say about bytes: whether they are a signed bundle, a model that passes the gate.
_CONTENT = {422: {"model": ErrorOut, "description": "Invalid input, or content the server cannot accept (not a "
                  "bundle signed by a trusted key, a model the gate refuses): the detail says which"}}  # fmt: skip


@router.post("", status_code=status.HTTP_201_CREATED, response_model=BundleDetail, openapi_extra=_BODY,
             responses=TOO_LARGE | _CONTENT)  # fmt: skip
async def upload_bundle(
    request: Request,
    rt: RuntimeDep,
    session: SessionDep,
    who: Operator,
    grants_key: Annotated[
        list[KeyId], Query(description="Key id (16 hex) this bundle's firmware adds to a device's trusted keys")
    ] = [],  # noqa: B006
) -> BundleDetail:
    """Upload a signed bundle file (`fleetctl bundle build`). The server verifies its signature against its
    trusted keys and runs the model gate before storing it."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > bundles.MAX_UPLOAD:
        raise BadRequest(f"{length} bytes is above the {bundles.MAX_UPLOAD}-byte bundle maximum")
    data = await request.body()

    def store() -> BundleDetail:  # verification, gate and disk I/O: off the event loop
        with audit.audited(session, who.name, "bundle.upload", f"{len(data)} bytes") as detail:
            if grants_key:
                detail["grants_keys"] = grants_key
            row = bundles.upload(session, data=data, keys=rt.keys, gate=rt.gate, bundle_dir=rt.settings.bundle_dir,
                                 actor=who.name, grants_keys=grants_key)  # fmt: skip
            detail["bundle_id"] = row.bundle_id
        return BundleDetail.model_validate(row)

    return await run_in_threadpool(store)


@router.post("/build", status_code=status.HTTP_201_CREATED, response_model=BundleDetail,
             responses=TOO_LARGE | _CONTENT)  # fmt: skip
def build_bundle(body: BundleBuild, rt: RuntimeDep, session: SessionDep, who: Operator) -> BundleDetail:
    """Build a bundle from its parts: model gate with the validation set, manifest, signature with the
    server's signing key; then stored like an upload."""
    with audit.audited(session, who.name, "bundle.build", body.bundle_id) as detail:
        try:
            values = body.release_values()
            val = b64decode(body.validation_set_base64, validate=True)
        except (binascii.Error, ValueError) as exc:  # ValueError: non-ASCII characters
            raise BadRequest(f"a base64 field is not valid base64: {exc}") from exc
        data, report = bundle_builder.build(values, body.hardware_class, val, rt.signing_key)
        row = bundles.upload(session, data=data, keys=rt.keys, gate=None, bundle_dir=rt.settings.bundle_dir,
                             actor=who.name, gate_report=report)  # fmt: skip
        detail["digest"] = row.digest
    return BundleDetail.model_validate(row)


@router.get("", response_model=list[BundlePublic])
def list_bundles(session: SessionDep, _who: Viewer, hardware_class: Filter = None) -> list[BundlePublic]:
    return [BundlePublic.model_validate(b) for b in bundles.list_bundles(session, hardware_class)]


@router.get("/{bundle_id}", response_model=BundleDetail)
def get_bundle(bundle_id: str, session: SessionDep, _who: Viewer) -> BundleDetail:
    return BundleDetail.model_validate(bundles.get(session, bundle_id))


@router.post("/{bundle_id}/publish", response_model=BundlePublic)
def publish_bundle(bundle_id: str, rt: RuntimeDep, session: SessionDep, who: Operator) -> BundlePublic:
    """Publish meta and blocks (retained) now; rollouts also do this on their first assignment."""
    with audit.audited(session, who.name, "bundle.publish", bundle_id) as detail:
        row = bundles.get(session, bundle_id)
        if row.status == "retired":
            raise Conflict(f"bundle {bundle_id!r} is retired")
        if rt.publisher is None:
            raise Conflict("the server is not connected to the broker")
        detail["blocks"] = publishing.publish_bundle(session, rt.publisher, rt.settings.bundle_dir, row)
        session.commit()
    return BundlePublic.model_validate(row)


@router.post("/{bundle_id}/retire", response_model=BundleRetired)
def retire_bundle(bundle_id: str, rt: RuntimeDep, session: SessionDep, who: Operator) -> BundleRetired:
    """Clear the bundle's retained meta and every block no other live bundle uses."""
    with audit.audited(session, who.name, "bundle.retire", bundle_id) as detail:
        row = bundles.get(session, bundle_id)
        if row.status == "retired":
            raise Conflict(f"bundle {bundle_id!r} is already retired")
        why = bundles.in_use_by(session, bundle_id)
        if why:
            raise Conflict(f"bundle {bundle_id!r} is in use: {why}")
        if rt.publisher is None:
            raise Conflict("the server is not connected to the broker")
        cleared = publishing.retire_bundle(session, rt.publisher, row)
        session.commit()
        detail["blocks_cleared"] = cleared
    return BundleRetired(bundle=BundlePublic.model_validate(row), blocks_cleared=cleared)
