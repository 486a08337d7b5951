"""Rotating the broker's CA and a device's password with fleetctl, against a real `fleet-server serve` whose
embedded Mosquitto serves TLS (SQLite; the same steps on PostgreSQL, in the server's own process:
workers/test_broker_certificate_switch.py). What counts is what real TLS MQTT clients get: a
device holding both CAs connects before and after the switch and keeps its session through it, a device
holding only the old CA cannot connect after it; a rotated password drops the live session, the old one is
refused and the new one accepted. Every refusal names its problem and changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tinyfleet.bundles.signing import generate_private_key, public_pem
from tinyfleet.simulator.server_proc import ADMIN_TOKEN, ServerProcess

from .srv_mqtt_client import TestClient as MqttClient
from .srv_pki import DAY, NOW, make_ca, make_server

FLEETCTL = Path(sys.executable).parent / "fleetctl"
RELOADED = "tinyfleet identity: broker reloaded its configuration"  # the identity plugin's line on a SIGHUP


class Fleet:
    def __init__(self, tmp: Path, db_url: str) -> None:
        self.tmp = tmp
        self.old_ca, self.new_ca = make_ca("fleet CA 2026"), make_ca("fleet CA 2027")
        self.old_ca_file = tmp / "old-ca.pem"
        self.old_ca_file.write_bytes(self.old_ca.pem)
        self.new_ca_file = tmp / "new-ca.pem"
        self.new_ca_file.write_bytes(self.new_ca.pem)
        self.old_srv = make_server(self.old_ca)
        self.new_srv = make_server(self.new_ca)
        old_cert, old_key = self.old_srv.write(tmp, "broker-2026")
        self.new_cert, self.new_key = self.new_srv.write(tmp, "broker-2027")
        pub = tmp / "signing.pub.pem"
        pub.write_bytes(public_pem(generate_private_key().public_key()))
        self.server = ServerProcess(tmp / "server", pub, db_url=db_url)
        self.server.env.update({
            "TINYFLEET_RUN_MODEL_GATE": "false", "TINYFLEET_BROKER_TLS": "true",
            "TINYFLEET_BROKER_CA_FILE": str(self.old_ca_file), "TINYFLEET_BROKER_TLS_CERT_FILE": str(old_cert),
            "TINYFLEET_BROKER_TLS_KEY_FILE": str(old_key),
        })  # fmt: skip
        self.env = {**os.environ, "TINYFLEET_SERVER": self.server.url, "TINYFLEET_TOKEN": ADMIN_TOKEN}
        self.port = 0
        self._n = 0

    def ctl(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(FLEETCTL), *map(str, args)], capture_output=True, text=True, timeout=120,
                              env=self.env)  # fmt: skip

    def ok(self, *args: str | Path) -> Any:
        r = self.ctl(*args, "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, self.server.url + "/api/v1" + path, timeout=60,
                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, **kw)  # fmt: skip

    def status(self) -> Any:
        r = self.api("GET", "/fleet-ca")
        assert r.status_code == 200, r.text
        return r.json()

    def provision(self, device_id: str) -> Any:
        r = self.api("POST", "/devices", json={"id": device_id, "hardware_class": "stm32l4"})
        assert r.status_code == 201, r.text
        return r.json()["broker"]

    def refused(self, message: str, path: str, body: dict[str, Any] | None = None, code: int = 409) -> None:
        """Refused by the API with `code` and a message naming the problem; nothing changed."""
        before = self.status()
        r = self.api("POST", "/fleet-ca" + path, json=body)
        assert r.status_code == code and message in r.json()["detail"], r.text
        assert self.status() == before

    def refused_ctl(self, message: str, *args: str | Path) -> None:
        """fleetctl's refusal: one line naming the problem, exit 1 or 2, nothing changed."""
        before = self.status()
        r = self.ctl(*args)
        assert r.returncode in (1, 2) and "Traceback" not in r.stderr, r.stderr
        (line,) = [x for x in r.stderr.splitlines() if x.strip()]
        assert message in line, line
        assert self.status() == before

    def switch_body(self, cert: Path, key: Path, force: bool = False) -> dict[str, Any]:
        return {"cert_file": str(cert), "key_file": str(key), "force": force}

    def ca_file(self, pem: str) -> Path:
        """What a device stores: the PEM it was handed."""
        self._n += 1
        f = self.tmp / f"device-ca-{self._n}.pem"
        f.write_text(pem)
        return f

    def connects(self, user: str, password: str, ca_file: Path) -> bool:
        """One TLS CONNECT, verifying the broker against `ca_file`: accepted or not (a failed handshake: not)."""
        try:
            c = MqttClient(self.port, user, password, ca_file=ca_file)
        except OSError:
            return False
        try:
            return c.wait_connected(5)
        finally:
            c.client.disconnect()
            c.client.loop_stop()


@pytest.fixture
def fleet(tmp_path: Path):
    f = Fleet(tmp_path, f"sqlite:///{tmp_path / 'fleet.db'}")
    f.server.start()
    try:
        yield f
    finally:
        f.server.stop()


def test_ca_rotation_and_password_rotation_with_fleetctl(fleet: Fleet) -> None:
    f = fleet
    st = f.status()
    assert st["phase"] == "steady" and [a["role"] for a in st["anchors"]] == ["current"]
    assert st["anchors"][0]["fingerprint"] == f.old_ca.fingerprint
    assert st["broker_certificate"] == f.old_srv.fingerprint  # seen in a real handshake

    old_only = f.provision("d-old")
    f.port = old_only["port"]
    assert old_only["tls"] and old_only["ca_pem"] == f.old_ca.pem.decode()
    old_ca_file = f.ca_file(old_only["ca_pem"])
    assert f.connects("d-old", old_only["password"], old_ca_file)
    rot = f.provision("d-rot")

    # bad inputs and steps out of order: refused, naming the problem, nothing changed
    expired = make_ca("fleet CA 2019", start=NOW - 400 * DAY, end=NOW - DAY).pem.decode()
    f.refused("is not a CA certificate", "/anchors", {"ca_pem": f.old_srv.pem.decode()}, 422)
    f.refused("(CN=fleet CA 2019) expired at", "/anchors", {"ca_pem": expired}, 422)
    f.refused("no PEM certificate in it", "/anchors", {"ca_pem": "-----BEGIN CERTIFICATE-----\nAAAA"}, 422)
    f.refused("not issued by any of the fleet's CAs (CN=fleet CA 2026); no new CA was added: add one first", "/switch",
              f.switch_body(f.new_cert, f.new_key), 422)  # fmt: skip
    f.refused("give an absolute path", "/switch", f.switch_body(Path("broker.pem"), f.new_key), 422)
    f.refused("not a regular file", "/switch", f.switch_body(Path("/dev/zero"), f.new_key), 422)
    f.refused_ctl("the CA file", "ca", "add", f.tmp / "missing.pem")

    r = f.ok("ca", "add", f.new_ca_file)
    assert r["result"] == "added CN=fleet CA 2027 as the next CA"
    assert f.ok("ca", "add", f.new_ca_file)["result"].endswith("is already handed out; nothing to do")
    st = f.status()
    assert st["phase"] == "added" and [a["role"] for a in st["anchors"]] == ["current", "next"]
    assert (st["devices"], st["lacking"], st["lacking_sample"]) == (2, 2, ["d-old", "d-rot"])
    f.refused("switch it to CN=fleet CA 2027 first", "/retire")
    f.refused("a rotation to CN=fleet CA 2027 is under way", "/anchors", {"ca_pem": make_ca("CA 2028").pem.decode()})

    # a new device gets both CAs, parsed as two certificates, and connects with them
    both = f.provision("d-both")
    assert both["ca_pem"] == f.old_ca.pem.decode() + f.new_ca.pem.decode()
    both_ca_file = f.ca_file(both["ca_pem"])
    assert f.connects("d-both", both["password"], both_ca_file)

    # a password rotation with fleetctl: the live session dropped, the old password refused, the new one
    # accepted, and the device now holds both CAs
    live = MqttClient(f.port, "d-rot", rot["password"], ca_file=f.ca_file(rot["ca_pem"]))
    try:
        assert live.wait_connected(10)
        new = f.ok("devices", "credentials", "d-rot")["broker"]
        assert live.dropped.wait(10)
    finally:
        live.close()
    rot_ca_file = f.ca_file(new["ca_pem"])
    assert new["password"] != rot["password"] and new["ca_pem"] == both["ca_pem"]
    assert not f.connects("d-rot", rot["password"], rot_ca_file)
    assert f.connects("d-rot", new["password"], rot_ca_file)
    st = f.status()
    assert (st["lacking"], st["lacking_sample"], [a["devices"] for a in st["anchors"]]) == (1, ["d-old"], [3, 2])

    # the switch: refused while d-old lacks the new CA, and for a key that is not the certificate's
    f.refused_ctl("1 device(s) were not handed the new CA (CN=fleet CA 2027)", "ca", "switch", "--cert", f.new_cert,
                  "--key", f.new_key)  # fmt: skip
    wrong_key = f.tmp / "wrong.key"
    wrong_key.write_bytes(make_server(f.new_ca).key_pem)
    f.refused("the broker key does not match the broker certificate", "/switch",
              f.switch_body(f.new_cert, wrong_key, force=True), 422)  # fmt: skip
    stale = make_server(f.new_ca, start=NOW - 9 * DAY, end=NOW - DAY)
    f.refused("expired at", "/switch", f.switch_body(*stale.write(f.tmp, "stale"), force=True), 422)
    assert f.status()["broker_certificate"] == f.old_srv.fingerprint

    staying = MqttClient(f.port, "d-both", both["password"], ca_file=both_ca_file)
    broker_pid = f.server.broker_pid()
    log = f.server.data_dir / "broker" / "mosquitto.log"
    assert RELOADED not in log.read_text()
    try:
        assert staying.wait_connected(10)
        r = f.ok("ca", "switch", "--cert", f.new_cert, "--key", f.new_key, "--force")
        assert f.server.broker_pid() == broker_pid and RELOADED in log.read_text()  # a SIGHUP, not a restart
        assert r["result"] == ("the broker serves CN=broker 127.0.0.1 from CN=fleet CA 2027 (1 device(s) without it "
                               "cannot connect any more)")  # fmt: skip
        assert r["status"]["phase"] == "switched" and r["status"]["broker_certificate"] == f.new_srv.fingerprint
        # the broker presents the new certificate, so it has reloaded: the session that was open stays open
        staying.subscribe("fleet/bundles/#")  # a round trip on it
        assert not staying.dropped.is_set() and staying.client.is_connected()
    finally:
        staying.close()
    assert f.connects("d-both", both["password"], both_ca_file)
    assert f.connects("d-rot", new["password"], rot_ca_file)
    assert not f.connects("d-old", old_only["password"], old_ca_file)
    assert f.ok("ca", "switch", "--cert", f.new_cert, "--key", f.new_key)["result"].endswith("nothing to do")
    f.refused("already serves a certificate from the new CA, CN=fleet CA 2027", "/cancel")
    f.refused("the previous CA CN=fleet CA 2026 is still handed out: retire it first", "/anchors",
              {"ca_pem": make_ca("CA 2028").pem.decode()})  # fmt: skip

    r = f.ok("ca", "retire")
    assert r["result"] == "retired CN=fleet CA 2026" and r["status"]["phase"] == "steady"
    assert f.ok("ca", "retire")["result"] == "no previous CA to retire; nothing to do"
    st = f.status()
    assert [(a["fingerprint"], a["role"]) for a in st["anchors"]] == [(f.new_ca.fingerprint, "current")]
    assert (st["lacking"], st["lacking_sample"]) == (1, ["d-old"])
    late = f.provision("d-late")
    assert late["ca_pem"] == f.new_ca.pem.decode()
    assert f.connects("d-late", late["password"], f.ca_file(late["ca_pem"]))

    # a restart: the settings still name the old CA's files; the broker keeps serving the switched certificate
    f.server.stop()
    f.server.start()
    assert f.status()["broker_certificate"] == f.new_srv.fingerprint
    assert f.connects("d-both", both["password"], both_ca_file)
    assert not f.connects("d-old", old_only["password"], old_ca_file)
    text = f.ctl("ca", "status")
    assert text.returncode == 0 and "phase steady: 4 device(s), 1 not handed the newest CA" in text.stdout
    assert "lacking: d-old" in text.stdout and f"broker presents {f.new_srv.fingerprint[:16]}" in text.stdout
    audit = f.api("GET", "/audit", params={"limit": 1000}).json()
    results = [(e["action"], e["result"]) for e in audit if e["action"].startswith("fleet_ca.")]
    assert ("fleet_ca.switch", "ok") in results and any(r.startswith("refused: 1 device(s)") for _, r in results)
