"""What the server leaves on disk: private modes, atomic files, and a broker that runs unprivileged.

The production default runs here: the server is root, so Mosquitto runs as `mosquitto`. pytest's own
temporary directories are private to root, so these tests put the data directory where that user can reach
it (a 0711 directory under /var/tmp), as an operator's /var/lib would be."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient as HttpClient

from tinyfleet.bundles import generate_private_key
from tinyfleet.server.api.app import create_app
from tinyfleet.server.broker.passwords import hash_password
from tinyfleet.server.runtime import ExportedCredentialSink, FleetRuntime
from tinyfleet.server.settings import Settings
from tinyfleet.server.workers.broker_process import BrokerError, EmbeddedBroker

from .srv_bundles import make_bundle, write_public_key
from .srv_mqtt_client import TestClient as MqttClient

ADMIN = "modes-admin"
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the unprivileged broker is started by a root server")


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _connects(port: int, user: str, password: str) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        c = MqttClient(port, user, password)
        ok = c.wait_connected(2)
        c.close()
        if ok:
            return True
    return False


@pytest.fixture
def reachable_dir() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="tf-modes-", dir="/var/tmp"))
    base.chmod(0o711)  # others may pass through, not list
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_data_directory_and_files_are_private_and_the_broker_is_unprivileged(reachable_dir: Path) -> None:
    data = reachable_dir / "data"
    data.mkdir(mode=0o755)
    (data / "fleet.db").touch(mode=0o644)  # left world-readable by an older server: tightened at start
    key = generate_private_key()
    pub = write_public_key(key, reachable_dir / "pub.pem")
    rt = FleetRuntime(Settings(data_dir=data, broker_user="mosquitto", bootstrap_admin_token=ADMIN,
                               trusted_key_files=[pub], run_model_gate=False))  # fmt: skip
    mosq = pwd.getpwnam("mosquitto")
    with HttpClient(create_app(rt)) as http:
        http.headers["Authorization"] = f"Bearer {ADMIN}"
        r = http.post("/api/v1/devices", json={"id": "dev-1", "hardware_class": "stm32l4"})
        assert r.status_code == 201, r.text
        password = r.json()["broker"]["password"]
        # the identity plugin read the device's file as the broker's user: the new device connects
        assert _connects(rt.broker_port, "dev-1", password)
        up = http.post("/api/v1/bundles", content=make_bundle(key, "b-1"),
                       headers={"Content-Type": "application/octet-stream"})  # fmt: skip
        assert up.status_code == 201, up.text

        assert rt.broker is not None and rt.broker._proc is not None
        status = Path(f"/proc/{rt.broker._proc.pid}/status").read_text()
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        assert uid_line.split()[1:] == [str(mosq.pw_uid)] * 4, uid_line  # real, effective, saved, filesystem

        st = data.stat()
        assert _mode(data) == 0o710 and st.st_gid == mosq.pw_gid  # the broker's group may pass, not list
        for f in ("fleet.db", "fleet.db-wal", "fleet.db-shm"):
            assert _mode(data / f) == 0o600, f
        assert _mode(data / "bundles") == 0o700
        stored = list((data / "bundles").iterdir())
        assert stored and all(_mode(f) == 0o600 for f in stored)
        broker = data / "broker"
        assert _mode(broker) == 0o700 and broker.stat().st_uid == mosq.pw_uid
        for name in ("mosquitto.conf", "acl", "port", "mosquitto.log", "mosquitto.pid",
                     "mosquitto.stderr"):  # fmt: skip
            assert _mode(broker / name) == 0o600, name
        for name in ("acl", "mosquitto.conf"):
            assert (broker / name).stat().st_uid == mosq.pw_uid, name
        assert not (broker / "passwords").exists()  # the identity plugin reads one file per identity
        assert _mode(broker / "persistence") == 0o700
        # the plugin was loaded as root, before Mosquitto became `mosquitto`; what it reads belongs to that user
        assert "tinyfleet identity: identities in" in (broker / "mosquitto.log").read_text()
        ids = broker / "identities"
        dirs = [ids, *(p for p in ids.rglob("*") if p.is_dir())]
        files = [p for p in ids.rglob("*") if p.is_file()]
        assert len(dirs) == 1 + 256 + 1 and sorted(p.name for p in files) == ["dev-1", "fleet-server"]
        assert all(_mode(d) == 0o700 and d.stat().st_uid == mosq.pw_uid for d in dirs)
        assert all(_mode(f) == 0o600 and f.stat().st_uid == mosq.pw_uid for f in files)
        # every write is whole: no temporary file is left behind
        leftovers = [p for p in data.rglob(".*") if p.is_file()]
        assert leftovers == []

        assert http.delete("/api/v1/devices/dev-1").status_code == 204
        assert not _connects(rt.broker_port, "dev-1", password) or pytest.fail("deleted device still connects")


def test_without_a_separate_broker_user_the_data_directory_is_0700(tmp_path: Path) -> None:
    rt = FleetRuntime(Settings(data_dir=tmp_path / "data", broker_user=pwd.getpwuid(os.getuid()).pw_name))
    rt.start()
    try:
        assert _mode(tmp_path / "data") == 0o700 and _mode(tmp_path / "data" / "fleet.db") == 0o600
        assert _mode(tmp_path / "data" / "broker") == 0o700
    finally:
        rt.stop()


def test_a_broker_user_that_cannot_reach_the_data_directory_is_named(tmp_path: Path) -> None:
    """pytest's base directory is 0700 root: `mosquitto` cannot enter it, and the error says where."""
    b = EmbeddedBroker(tmp_path / "data" / "broker", server_user="fleet-server", server_password="pw",
                       run_as="mosquitto")  # fmt: skip
    blocked = next(p for p in reversed(tmp_path.parents) if not _mode(p) & 0o001)  # the first one from /
    with pytest.raises(BrokerError, match=f"user 'mosquitto', which cannot enter {blocked} .*broker_user"):
        b.start({})
    with pytest.raises(BrokerError, match="the broker's user 'no-such-user' does not exist"):
        EmbeddedBroker(tmp_path / "b", server_user="fleet-server", server_password="pw", run_as="no-such-user")


def test_exported_broker_files_are_private_whole_and_refuse_server_users(tmp_path: Path) -> None:
    export = tmp_path / "broker-export"
    sink = ExportedCredentialSink(export, ["fleet-server", "replica-2"], dict)
    sink.export({"dev-1": hash_password("a")})
    assert _mode(export) == 0o700
    assert _mode(export / "passwords") == 0o600 and _mode(export / "acl") == 0o600
    before = (export / "passwords").read_bytes()
    for reserved in ("fleet-server", "replica-2"):
        # installed as documented, such a device would get readwrite on fleet/#
        with pytest.raises(BrokerError, match=f"device id '{reserved}' collides with a server broker user"):
            sink.export({"dev-1": hash_password("a"), reserved: hash_password("b")})
    assert (export / "passwords").read_bytes() == before  # nothing half-written
    assert sorted(p.name for p in export.iterdir()) == ["acl", "passwords"]


def test_an_exported_batch_is_one_rewrite_with_every_change(tmp_path: Path) -> None:
    export = tmp_path / "broker-export"
    committed = {"dev-1": hash_password("a"), "dev-2": hash_password("b")}
    sink = ExportedCredentialSink(export, ["fleet-server"], lambda: committed)
    new = {"dev-3": hash_password("c"), "dev-4": hash_password("d")}
    sink.write_many({**new, "dev-1": None})  # two added, one revoked: the file holds the database plus the batch
    users = [line.split(":", 1)[0] for line in (export / "passwords").read_text().splitlines() if line]
    assert sorted(users) == ["dev-2", "dev-3", "dev-4"]
    assert f"dev-3:{new['dev-3']}" in (export / "passwords").read_text()
