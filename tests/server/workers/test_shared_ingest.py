"""Two server replicas split telemetry ingest through an MQTT v5 shared subscription; nothing is stored twice."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session, func, select

from tinyfleet.protocol import topics
from tinyfleet.protocol.records import ChannelStats, Telemetry
from tinyfleet.server.db.models import TelemetryRecord
from tinyfleet.server.runtime import FleetRuntime
from tinyfleet.server.services import devices
from tinyfleet.server.settings import Settings

from ..srv_fleet import wait_until
from ..srv_mqtt_client import TestClient as MqttClient


def test_two_replicas_share_the_stream(tmp_path: Path, db_url: str) -> None:
    common = {"database_url": db_url, "broker_password": "replica-secret", "ingest_share_group": "ingest",
              "run_model_gate": False}  # fmt: skip
    a = FleetRuntime(Settings(data_dir=tmp_path / "a", broker_replica_users=["fleet-server-b"], **common))
    a.start()
    b = None
    try:
        b = FleetRuntime(Settings(data_dir=tmp_path / "b", broker_username="fleet-server-b", broker_mode="external",
                                  broker_port=a.broker_port, **common))  # fmt: skip
        b.start()
        with Session(a.engine) as s:
            _, pw = devices.provision(s, a.credential_sink, "d1", "stm32l4", {})
        for _ in range(50):  # the broker reloads its password file a moment after provisioning
            dev = MqttClient(a.broker_port, "d1", pw, client_id="d1")
            if dev.wait_connected(1):
                break
            dev.close()
        for w in range(1, 201):
            t = Telemetry(1, w, 0, 60, 10, 10, 1, 0, 0, 0, 0, 0, 0, bytes(32), (0,) * 16, (ChannelStats(0, 0),))
            dev.publish(topics.telemetry("d1"), t.encode(), qos=1)
        assert wait_until(lambda: a.ingest.persisted + b.ingest.persisted >= 200, 20)  # type: ignore[union-attr]
        assert a.ingest.persisted > 0 and b.ingest.persisted > 0  # type: ignore[union-attr]
        with Session(a.engine) as s:
            assert s.exec(select(func.count()).select_from(TelemetryRecord)).one() == 200
        # the external-broker replica cannot change that broker's users: it exports the files for its operator
        with Session(b.engine) as s:
            devices.provision(s, b.credential_sink, "d2", "stm32l4", {})
        exported = (tmp_path / "b/broker-export/acl").read_text()
        assert "pattern read fleet/d/+/%u/desired" in exported and "user fleet-server-b\n" in exported
        users = [line.split(":")[0] for line in (tmp_path / "b/broker-export/passwords").read_text().splitlines()]
        assert users == ["d1", "d2"]
        dev.close()
    finally:
        if b is not None:
            b.stop()
        a.stop()
