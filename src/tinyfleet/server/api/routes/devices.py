from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query, status

from tinyfleet.server.api.deps import Admin, Filter, Operator, RuntimeDep, SessionDep, Viewer
from tinyfleet.server.api.schemas import (
    BROKER_DOWN,
    ERRORS,
    TAG_KEY_RE,
    TAG_VALUE_RE,
    TOO_LARGE,
    BrokerCredentials,
    DeviceBatchCreate,
    DeviceBatchProvisioned,
    DeviceCreate,
    DeviceProvisioned,
    DevicePublic,
    DeviceReportPublic,
    DeviceTagsUpdate,
    TelemetryWindowPublic,
    rule,
)
from tinyfleet.server.db.models import Device
from tinyfleet.server.services import audit, device_batches, device_tags, devices, fleet_ca
from tinyfleet.server.services.device_batches import NewDevice
from tinyfleet.server.services.devices import MAX_TAGS

router = APIRouter(prefix="/devices", tags=["devices"], responses=ERRORS)

TagFilter = rule(re.compile(f"(?:{TAG_KEY_RE.pattern})=(?:{TAG_VALUE_RE.pattern})"), "tag filter",
                 "name=value, a tag name and value as a device's tags hold them")  # fmt: skip


def _parse_tags(tag: list[str]) -> dict[str, str] | None:
    """The filters as one tag map; None when they ask one tag for two values, which no device has."""
    out: dict[str, str] = {}
    for t in tag:
        k, _, v = t.partition("=")
        if out.setdefault(k, v) != v:
            return None
    return out


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DeviceProvisioned,
             responses=TOO_LARGE | BROKER_DOWN)  # fmt: skip
def provision_device(body: DeviceCreate, rt: RuntimeDep, session: SessionDep, who: Operator) -> DeviceProvisioned:
    """Register a device; the response carries its broker password, shown only here."""
    ca_pem, anchors = _trust(rt, session)
    with audit.audited(session, who.name, "device.provision", body.id):
        dev, password = devices.provision(session, rt.credential_sink, body.id, body.hardware_class, body.tags,
                                          trust_anchors=anchors)  # fmt: skip
    return _credentials(rt, dev, password, ca_pem)


@router.post("/batch", status_code=status.HTTP_201_CREATED, response_model=DeviceBatchProvisioned,
             responses=TOO_LARGE | BROKER_DOWN)  # fmt: skip
def provision_batch(
    body: DeviceBatchCreate, rt: RuntimeDep, session: SessionDep, who: Operator
) -> DeviceBatchProvisioned:
    """Register 1 to 500 devices in one request, all or none; the response carries each one's broker password
    (shown only here), in the request's order. One audit entry for the batch, naming its devices."""
    ca_pem, anchors = _trust(rt, session)
    batch = [NewDevice(d.id, d.hardware_class, d.tags) for d in body.devices]
    target = batch[0].id if len(batch) == 1 else f"{batch[0].id} .. {batch[-1].id} ({len(batch)} devices)"
    with audit.audited(session, who.name, "device.provision_batch", target) as detail:
        detail["devices"] = [d.id for d in batch]
        done = device_batches.provision_batch(session, rt.credential_sink, batch, trust_anchors=anchors)
    return DeviceBatchProvisioned(devices=[_credentials(rt, dev, password, ca_pem) for dev, password in done])


def _trust(rt: RuntimeDep, session: SessionDep) -> tuple[str | None, str | None]:
    """The CA bundle a device is handed now, and its record on the device's row (services/fleet_ca.py)."""
    return fleet_ca.handout(session) if rt.settings.broker_tls else (None, None)


def _credentials(rt: RuntimeDep, dev: Device, password: str, ca_pem: str | None) -> DeviceProvisioned:
    return DeviceProvisioned(
        device=DevicePublic.model_validate(dev),
        broker=BrokerCredentials(
            host=rt.broker_host,
            port=rt.broker_port,
            tls=rt.settings.broker_tls,
            ca_pem=ca_pem,
            username=dev.id,
            password=password,
            client_id=dev.id,
        ),
    )


@router.post("/{device_id}/credentials", response_model=DeviceProvisioned, responses=BROKER_DOWN)
def rotate_credentials(device_id: str, rt: RuntimeDep, session: SessionDep, who: Operator) -> DeviceProvisioned:
    """Give the device a new broker password (shown only here) and the CA bundle the fleet hands out now; the old
    password stops working and the device's live session is dropped."""
    ca_pem, anchors = _trust(rt, session)
    with audit.audited(session, who.name, "device.rotate_credentials", device_id):
        dev, password = devices.rotate_password(session, rt.credential_sink, device_id, trust_anchors=anchors)
    return _credentials(rt, dev, password, ca_pem)


@router.get("", response_model=list[DevicePublic])
def list_devices(
    session: SessionDep,
    _who: Viewer,
    hardware_class: Filter = None,
    tag: Annotated[
        list[TagFilter], Query(max_length=MAX_TAGS, description="name=value (a tag name and value as a device's "
                               "tags hold them); repeat to require several")
    ] = [],  # noqa: B006
    online: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> list[DevicePublic]:
    tags = _parse_tags(tag)
    if tags is None:
        return []
    rows = devices.list_devices(
        session, hardware_class=hardware_class, tags=tags, online=online, limit=limit, offset=offset
    )
    return [DevicePublic.model_validate(d) for d in rows]


@router.get("/{device_id}", response_model=DevicePublic)
def get_device(device_id: str, session: SessionDep, _who: Viewer) -> DevicePublic:
    return DevicePublic.model_validate(devices.get(session, device_id))


@router.patch("/{device_id}/tags", response_model=DevicePublic, responses=TOO_LARGE)
def update_tags(device_id: str, body: DeviceTagsUpdate, session: SessionDep, who: Operator) -> DevicePublic:
    """Remove the `remove` tag names, then set `set`. Rollouts already created keep their strata."""
    with audit.audited(session, who.name, "device.tags", device_id) as detail:
        detail.update(set=body.set, remove=body.remove)
        dev = device_tags.update_tags(session, device_id, body.set, body.remove)
    return DevicePublic.model_validate(dev)


@router.get("/{device_id}/reports", response_model=list[DeviceReportPublic])
def device_reports(
    device_id: str,
    session: SessionDep,
    _who: Viewer,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> list[DeviceReportPublic]:
    """The device's state reports as stored, oldest first: each (epoch, seq) once, whatever was redelivered."""
    return [
        DeviceReportPublic(
            epoch=r.seq >> 32, seq=r.seq & 0xFFFFFFFF, state=r.state, reason=r.reason, bundle_id=r.bundle_id,
            received_at=r.received_at,
        )  # fmt: skip
        for r in devices.reports(session, device_id, limit, offset)
    ]


@router.get("/{device_id}/telemetry", response_model=list[TelemetryWindowPublic])
def device_telemetry(
    device_id: str, session: SessionDep, _who: Viewer, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[TelemetryWindowPublic]:
    """The device's newest `limit` telemetry windows, oldest first: per channel the mean and standard deviation
    of calibrated input (what the dashboard's drift chart draws), inferences, alarms, latency p99."""
    return [TelemetryWindowPublic.model_validate(p) for p in devices.telemetry(session, device_id, limit)]


@router.delete("/{device_id}", status_code=status.HTTP_204_NO_CONTENT, responses=BROKER_DOWN)
def delete_device(device_id: str, rt: RuntimeDep, session: SessionDep, who: Admin) -> None:
    """Remove a device: its broker credentials stop working and its live session is dropped at once; its
    entries in rollouts stay (docs/operations.md, "Credentials")."""
    with audit.audited(session, who.name, "device.delete", device_id):
        devices.delete(session, rt.credential_sink, device_id, rt.publisher)
