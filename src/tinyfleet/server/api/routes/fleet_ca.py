"""The broker's CA: its rotation's status and steps (docs/operations.md, "Rotating the broker's CA")."""

from __future__ import annotations

import os
import stat
import time
from dataclasses import asdict
from pathlib import Path

from fastapi import APIRouter

from tinyfleet.server.api.deps import Admin, RuntimeDep, SessionDep, Viewer
from tinyfleet.server.api.schemas import BROKER_DOWN, ERRORS, TOO_LARGE, CaAdd, CaStatusPublic, CaStepOut, CaSwitch
from tinyfleet.server.services import audit
from tinyfleet.server.services import fleet_ca as ca_service
from tinyfleet.server.services.errors import Conflict, Unprocessable

router = APIRouter(prefix="/fleet-ca", tags=["fleet-ca"], responses=ERRORS)

MAX_FILE_BYTES = 65536  # a certificate chain or a key; nothing legitimate is larger


def _status(rt: RuntimeDep, session: SessionDep) -> CaStatusPublic:
    st = ca_service.status(session)
    return CaStatusPublic(**asdict(st), broker_certificate=rt.served() if rt.settings.broker_tls else None)


def _read(field: str, name: str) -> str:
    path = Path(name)
    if not path.is_absolute():
        raise Unprocessable(f"{field} {name!r}: give an absolute path on the server's host")
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise Unprocessable(f"{field} {name}: not a regular file")
        if st.st_size > MAX_FILE_BYTES:
            raise Unprocessable(f"{field} {name}: {st.st_size} bytes; a PEM file here is at most {MAX_FILE_BYTES}")
        return path.read_text()
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path, or text that is not UTF-8
        raise Unprocessable(f"{field} {name}: cannot read it ({exc})") from None


@router.get("", response_model=CaStatusPublic)
def get_status(rt: RuntimeDep, session: SessionDep, _who: Viewer) -> CaStatusPublic:
    """The anchors the fleet hands devices, how many devices were handed each, and how many lack the newest."""
    return _status(rt, session)


@router.post("/anchors", response_model=CaStepOut, responses=TOO_LARGE)
def add_anchor(body: CaAdd, rt: RuntimeDep, session: SessionDep, who: Admin) -> CaStepOut:
    """Add the next CA: provisioning and credential rotation hand devices it besides the current one from now
    on. Adding the CA that is already next changes nothing."""
    with audit.audited(session, who.name, "fleet_ca.add", "broker CA") as detail:
        changed, ca = ca_service.add(session, body.ca_pem, time.time())
        detail.update(fingerprint=ca.fingerprint, subject=ca.subject, changed=changed)
    if changed:
        rt.trust(ca.pem)
    result = f"added {ca.subject} as the next CA" if changed else f"{ca.subject} is already handed out; nothing to do"
    return CaStepOut(result=result, status=_status(rt, session))


@router.post("/switch", response_model=CaStepOut, responses=TOO_LARGE | BROKER_DOWN)
def switch(body: CaSwitch, rt: RuntimeDep, session: SessionDep, who: Admin) -> CaStepOut:
    """Make the embedded broker serve a certificate from the next CA (or a renewed one from the current CA);
    refused while devices were not handed the next CA, unless `force`. Connected devices stay connected."""
    with audit.audited(session, who.name, "fleet_ca.switch", "broker CA") as detail:
        detail.update(cert_file=body.cert_file, force=body.force)
        if rt.broker is None:
            raise Conflict(f"the broker is {rt.settings.broker_mode}, not embedded: its certificate is its operator's "
                           "to install (a cluster node takes it on SIGHUP)")
        chain, key = _read("cert_file", body.cert_file), _read("key_file", body.key_file)
        out = ca_service.switch(session, chain, key, force=body.force, server=rt, now=time.time())
        detail.update(kind=out.kind, fingerprint=out.certificate.fingerprint, lacking=out.lacking)
    result = {
        "switched": f"the broker serves {out.certificate.subject} from {out.issuer}",
        "renewed": f"the broker serves the renewed {out.certificate.subject} from {out.issuer}",
        "unchanged": f"the broker already serves {out.certificate.subject}; nothing to do",
    }[out.kind]
    if out.kind == "switched" and out.lacking:
        result += f" ({out.lacking} device(s) without it cannot connect any more)"
    return CaStepOut(result=result, status=_status(rt, session))


@router.post("/retire", response_model=CaStepOut)
def retire(rt: RuntimeDep, session: SessionDep, who: Admin) -> CaStepOut:
    """Stop handing out the previous CA, once the broker serves a certificate from the new one."""
    with audit.audited(session, who.name, "fleet_ca.retire", "broker CA") as detail:
        gone = ca_service.retire(session)
        detail.update(retired=gone)
    result = f"retired {'; '.join(gone)}" if gone else "no previous CA to retire; nothing to do"
    return CaStepOut(result=result, status=_status(rt, session))


@router.post("/cancel", response_model=CaStepOut)
def cancel(rt: RuntimeDep, session: SessionDep, who: Admin) -> CaStepOut:
    """Stop handing out the next CA, before the broker was switched to it."""
    with audit.audited(session, who.name, "fleet_ca.cancel", "broker CA") as detail:
        gone = ca_service.cancel(session)
        detail.update(dropped=gone)
    result = f"no longer handing out {'; '.join(gone)}" if gone else "no rotation under way; nothing to do"
    return CaStepOut(result=result, status=_status(rt, session))
