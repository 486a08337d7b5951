"""The embedded broker with TLS: the server verifies the broker's certificate against its CA; a client
without TLS gets nothing."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient as HttpClient
from paho.mqtt.enums import CallbackAPIVersion

from tinyfleet.server.api.app import create_app
from tinyfleet.server.runtime import FleetRuntime
from tinyfleet.server.settings import Settings
from tinyfleet.server.workers.broker_process import BrokerError

from ..srv_fleet import wait_until

TOKEN = "tls-admin"


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())  # fmt: skip


def make_pki(d: Path) -> tuple[Path, Path, Path]:
    now = datetime.datetime.now(datetime.UTC)
    ca_key, srv_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tinyfleet test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(1).not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    srv = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])).issuer_name(ca_name)
        .public_key(srv_key.public_key()).serial_number(2)
        .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "broker.pem").write_bytes(srv.public_bytes(serialization.Encoding.PEM))
    (d / "broker.key").write_bytes(_pem(srv_key))
    return d / "ca.pem", d / "broker.pem", d / "broker.key"


def test_embedded_broker_over_tls(tmp_path: Path) -> None:
    ca, cert, key = make_pki(tmp_path)
    settings = Settings(
        data_dir=tmp_path / "data",
        bootstrap_admin_token=TOKEN,
        run_model_gate=False,
        broker_tls=True,
        broker_ca_file=ca,
        broker_tls_cert_file=cert,
        broker_tls_key_file=key,
    )
    rt = FleetRuntime(settings)
    with HttpClient(create_app(rt)) as http:
        http.headers["Authorization"] = f"Bearer {TOKEN}"
        assert http.get("/healthz").json()["broker"] is True  # the server's link is up, over verified TLS
        creds = http.post("/api/v1/devices", json={"id": "d1", "hardware_class": "stm32l4"}).json()["broker"]
        assert creds["tls"] is True and creds["ca_pem"] == ca.read_text()  # what the device verifies with
        device_ca = tmp_path / "device-ca.pem"
        device_ca.write_text(creds["ca_pem"])

        def connects(use_tls: bool) -> bool:
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="d1", protocol=mqtt.MQTTv5)
            c.username_pw_set("d1", creds["password"])
            ok: list[bool] = []
            c.on_connect = lambda *a: ok.append(not a[3].is_failure)
            if use_tls:
                c.tls_set(ca_certs=str(device_ca), cert_reqs=ssl.CERT_REQUIRED)
            try:
                c.connect("127.0.0.1", creds["port"], keepalive=10)
            except OSError:
                return False
            c.loop_start()
            wait_until(lambda: bool(ok), 3)
            c.disconnect()
            c.loop_stop()
            return ok == [True]

        assert wait_until(lambda: connects(True), 5)
        assert not connects(False)


def test_an_unreadable_ca_file_is_named_before_anything_starts(tmp_path: Path) -> None:
    _, cert, key = make_pki(tmp_path)
    for bad in (tmp_path / "missing.pem", tmp_path):  # absent; a directory
        with pytest.raises(BrokerError, match=f"broker_ca_file {bad}: cannot read it as PEM text"):
            FleetRuntime(Settings(data_dir=tmp_path / "data", broker_tls=True, broker_ca_file=bad,
                                  broker_tls_cert_file=cert, broker_tls_key_file=key))  # fmt: skip
    (tmp_path / "binary.pem").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(BrokerError, match="binary.pem: cannot read it as PEM text"):
        FleetRuntime(Settings(data_dir=tmp_path / "data", broker_tls=True, broker_ca_file=tmp_path / "binary.pem",
                              broker_tls_cert_file=cert, broker_tls_key_file=key))  # fmt: skip
