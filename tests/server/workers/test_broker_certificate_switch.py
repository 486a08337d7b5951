"""A CA rotation in the server's own process, on SQLite and PostgreSQL: the status counts devices by what they
were handed; a broker that does not take the certificate leaves everything as it was (503, the roles, the
certificate file); the switch, forced, and the retirement; a switch that reached the broker but not the
database is recorded at the next start."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from fastapi.testclient import TestClient as HttpClient
from sqlmodel import Session

from tinyfleet.server.api.app import create_app
from tinyfleet.server.broker import fleet_ca
from tinyfleet.server.db import migrate
from tinyfleet.server.runtime import FleetRuntime
from tinyfleet.server.services import fleet_ca as ca_service
from tinyfleet.server.services import tokens
from tinyfleet.server.settings import Settings
from tinyfleet.server.workers.tls_probe import presented_fingerprint

from ..srv_fleet import wait_until
from ..srv_pki import make_ca, make_server

ADMIN = "switch-admin"


def _runtime(tmp: Path, db_url: str, cert: Path, key: Path, ca: Path) -> FleetRuntime:
    return FleetRuntime(Settings(data_dir=tmp / "data", database_url=db_url, bootstrap_admin_token=ADMIN,
                                 run_model_gate=False, broker_tls=True, broker_ca_file=ca, broker_tls_cert_file=cert,
                                 broker_tls_key_file=key))  # fmt: skip


def test_a_failed_switch_changes_nothing_and_an_unrecorded_one_is_recorded_at_start(tmp_path: Path,
                                                                                   db_url: str) -> None:  # fmt: skip
    old, new = make_ca("old CA"), make_ca("new CA")
    (tmp_path / "old-ca.pem").write_bytes(old.pem)
    old_srv, new_srv = make_server(old), make_server(new)
    cert, key = old_srv.write(tmp_path, "old-broker")
    new_cert, new_key = new_srv.write(tmp_path, "new-broker")
    rt = _runtime(tmp_path, db_url, cert, key, tmp_path / "old-ca.pem")
    with HttpClient(create_app(rt)) as http:
        http.headers["Authorization"] = f"Bearer {ADMIN}"
        def provision(device_id: str) -> str:
            r = http.post("/api/v1/devices", json={"id": device_id, "hardware_class": "stm32l4"})
            assert r.status_code == 201, r.text
            return r.json()["broker"]["ca_pem"]

        def counts() -> tuple[str, int, int, list[str], list[int]]:
            st = http.get("/api/v1/fleet-ca").json()
            per_ca = [a["devices"] for a in st["anchors"]]
            return st["phase"], st["devices"], st["lacking"], st["lacking_sample"], per_ca

        assert provision("a-1") == provision("a-2") == old.pem.decode()
        assert counts() == ("steady", 2, 0, [], [2])
        assert http.post("/api/v1/fleet-ca/anchors", json={"ca_pem": new.pem.decode()}).status_code == 200
        assert counts() == ("added", 2, 2, ["a-1", "a-2"], [2, 0])
        assert provision("b-1") == old.pem.decode() + new.pem.decode()
        assert http.post("/api/v1/devices/a-2/credentials").json()["broker"]["ca_pem"] == (old.pem + new.pem).decode()
        assert counts() == ("added", 3, 1, ["a-1"], [3, 2])
        r = http.post("/api/v1/devices/batch", json={"devices": [{"id": f"c-{i}", "hardware_class": "stm32l4"}
                                                                 for i in (1, 2)]})  # fmt: skip
        assert r.status_code == 201, r.text
        assert [d["broker"]["ca_pem"] for d in r.json()["devices"]] == [(old.pem + new.pem).decode()] * 2
        assert counts() == ("added", 5, 1, ["a-1"], [5, 4])  # a batch records what its devices were handed
        broker = rt.broker
        assert broker is not None and broker._proc is not None
        kept = broker.certificate_file.read_text()
        os.kill(broker._proc.pid, signal.SIGKILL)  # the broker is gone: it cannot take the certificate
        assert wait_until(lambda: not broker.running, 10)
        r = http.post("/api/v1/fleet-ca/switch", json={"cert_file": str(new_cert), "key_file": str(new_key),
                                                        "force": True})  # fmt: skip
        assert r.status_code == 503, r.text
        assert r.json()["detail"] == ("the broker did not take the certificate: the broker is not running; nothing "
                                      "was changed")  # fmt: skip
        assert broker.certificate_file.read_text() == kept
        with Session(rt.engine) as s:
            assert [a.role for a in ca_service.anchors(s)] == ["current", "next"]
        audit = http.get("/api/v1/audit", params={"action": "fleet_ca.switch"}).json()
        assert audit[0]["result"].startswith("failed: the broker did not take the certificate")

    # the broker back: the switch (forced past a-1), then the retirement
    rt = _runtime(tmp_path, db_url, cert, key, tmp_path / "old-ca.pem")
    with HttpClient(create_app(rt)) as http:
        http.headers["Authorization"] = f"Bearer {ADMIN}"
        body = {"cert_file": str(new_cert), "key_file": str(new_key)}
        r = http.post("/api/v1/fleet-ca/switch", json=body)
        assert r.status_code == 409 and r.json()["detail"].startswith("1 device(s) were not handed the new CA")
        assert http.post("/api/v1/fleet-ca/switch", json=body | {"force": True}).status_code == 200
        assert counts() == ("switched", 5, 1, ["a-1"], [5, 4])
        r = http.post("/api/v1/fleet-ca/switch", json={"cert_file": str(cert), "key_file": str(key)})
        assert r.status_code == 409 and r.json()["detail"] == ("the certificate is from the previous CA, CN=old CA, "
                                                               "which the fleet is moving away from: give one from "
                                                               "the current CA, CN=new CA")  # fmt: skip
        assert http.post("/api/v1/fleet-ca/retire").status_code == 200
        assert counts() == ("steady", 5, 1, ["a-1"], [4])
        assert http.post("/api/v1/fleet-ca/cancel").json()["result"] == "no rotation under way; nothing to do"

    # the next rotation: a switch that got as far as the broker's file before the server stopped is recorded at
    # the next start
    newer = make_ca("newer CA")
    newer_srv = make_server(newer)
    rt = _runtime(tmp_path, db_url, cert, key, tmp_path / "old-ca.pem")
    with HttpClient(create_app(rt)) as http:
        http.headers["Authorization"] = f"Bearer {ADMIN}"
        assert http.post("/api/v1/fleet-ca/anchors", json={"ca_pem": newer.pem.decode()}).status_code == 200
    chain = fleet_ca.check_broker_certificate(newer_srv.pem, newer_srv.key_pem,
                                              [fleet_ca.parse_ca(newer.pem, time.time())], time.time())  # fmt: skip
    broker.certificate_file.write_text(chain.pem)
    rt2 = _runtime(tmp_path, db_url, cert, key, tmp_path / "old-ca.pem")
    with HttpClient(create_app(rt2)):
        with Session(rt2.engine) as s:
            assert [(a.fingerprint, a.role) for a in ca_service.anchors(s)] == [
                (new.fingerprint, "previous"), (newer.fingerprint, "current")]  # fmt: skip
        assert presented_fingerprint("127.0.0.1", rt2.broker_port) == newer_srv.fingerprint
        assert rt2.link is not None and rt2.link.connected  # the server's own session trusts the newer CA


def test_the_switch_is_refused_for_an_external_broker(tmp_path: Path) -> None:
    """The operator of an external broker installs its certificate; the server says so and changes nothing."""
    ca = make_ca("external CA")
    (tmp_path / "ca.pem").write_bytes(ca.pem)
    cert, key = make_server(ca).write(tmp_path, "broker")
    rt = FleetRuntime(Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'fleet.db'}",
                               bootstrap_admin_token=ADMIN, run_model_gate=False, broker_mode="external",
                               broker_port=1, broker_tls=True, broker_ca_file=tmp_path / "ca.pem"))  # fmt: skip
    migrate.upgrade(rt.engine)  # no broker to start: only the API's own state
    with Session(rt.engine) as s:
        tokens.ensure_bootstrap(s, ADMIN)
    with HttpClient(create_app(rt, manage_runtime=False)) as http:
        http.headers["Authorization"] = f"Bearer {ADMIN}"
        r = http.post("/api/v1/fleet-ca/switch", json={"cert_file": str(cert), "key_file": str(key)})
        assert r.status_code == 409 and r.json()["detail"] == (
            "the broker is external, not embedded: its certificate is its operator's to install (a cluster node "
            "takes it on SIGHUP)")  # fmt: skip
        assert not (tmp_path / "data" / "broker" / "certificate.pem").exists()
