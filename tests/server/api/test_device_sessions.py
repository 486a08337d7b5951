"""Device broker sessions across credential changes (docs/device-protocol.md, "Connection"), through the API and
the embedded Mosquitto with its generated configuration, judged by what real MQTT v5 clients receive.

A rotation ends the device's connection but not its session: it resumes it with the new password and gets
what was published to it meanwhile. A deleted device's session is never resumed; a device provisioned later
under the same id connects with Clean Start (a new boot) and inherits nothing of it.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient as HttpClient
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tinyfleet.protocol import topics
from tinyfleet.server.api.app import create_app
from tinyfleet.server.runtime import FleetRuntime
from tinyfleet.server.settings import Settings

ADMIN = "sessions-admin"
WATCHER = "session-watch"  # a second server user, to watch presence the way the server does


@pytest.fixture
def api(tmp_path: Path):
    rt = FleetRuntime(Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'fleet.db'}",
                               bootstrap_admin_token=ADMIN, run_model_gate=False,
                               broker_replica_users=[WATCHER]))  # fmt: skip
    with HttpClient(create_app(rt)) as http:
        http.headers["Authorization"] = f"Bearer {ADMIN}"
        yield http, rt


class Device:
    """One connection of a device as the agent makes it: MQTT v5, a session expiry, Clean Start as asked."""

    def __init__(self, port: int, device_id: str, password: str, *, clean_start: bool, will: bool = False) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.arrived = threading.Condition()
        self.connack = threading.Event()
        self.dropped = threading.Event()
        self.session_present: bool | None = None
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_id, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(device_id, password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_a: self.dropped.set()
        self.client.on_message = self._on_message
        if will:
            self.client.will_set(topics.presence(device_id), b"offline", qos=1, retain=True)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, clean_start=clean_start, properties=props)
        self.client.loop_start()
        assert self.connack.wait(10) and self.session_present is not None

    def _on_connect(self, _c: object, _u: object, flags: mqtt.ConnectFlags, rc: object, _p: object) -> None:
        if not getattr(rc, "is_failure", False) and self.session_present is None:
            self.session_present = bool(flags.session_present)
        self.connack.set()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self.arrived:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))
            self.arrived.notify_all()

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *_a: done.set()
        self.client.subscribe(topic, 1)
        assert done.wait(10)

    def wait_for(self, payload: bytes) -> list[tuple[str, bytes, bool]]:
        """Everything received up to and including `payload` (a session delivers in publish order)."""
        with self.arrived:
            assert self.arrived.wait_for(lambda: any(m[1] == payload for m in self.messages), 10), self.messages
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def die(self) -> None:
        """The connection ends without a DISCONNECT (a lost network): the broker publishes the will."""
        self.client.loop_stop()
        sock = self.client.socket()
        assert sock is not None
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()


def _provision(http: HttpClient, device_id: str) -> str:
    r = http.post("/api/v1/devices", json={"id": device_id, "hardware_class": "stm32l4"})
    assert r.status_code == 201, r.text
    return r.json()["broker"]["password"]


def _server_publish(rt: FleetRuntime, topic: str, payload: bytes) -> None:
    assert rt.link is not None
    rt.link.client.publish(topic, payload, qos=1).wait_for_publish(10)


def test_a_rotated_device_resumes_its_session_and_a_reused_id_inherits_nothing(api) -> None:
    http, rt = api
    desired = topics.desired("sess-1")
    first = Device(rt.broker_port, "sess-1", _provision(http, "sess-1"), clean_start=True)
    assert first.session_present is False
    first.subscribe(desired)

    r = http.post("/api/v1/devices/sess-1/credentials")
    assert r.status_code == 200, r.text
    assert first.dropped.wait(5)  # the broker ended the connection (DISCONNECT 0x98)
    first.close()
    _server_publish(rt, desired, b"while rotated")
    resumed = Device(rt.broker_port, "sess-1", r.json()["broker"]["password"], clean_start=False)
    try:
        assert resumed.session_present is True
        # Not subscribed on this connection: it came from the session, forwarded, not retained.
        assert resumed.wait_for(b"while rotated") == [(desired, b"while rotated", False)]
    finally:
        resumed.close()  # a clean DISCONNECT: the session stays, subscribed to the device's desired state

    assert http.delete("/api/v1/devices/sess-1").status_code == 204
    _server_publish(rt, desired, b"for the deleted device")
    reused = Device(rt.broker_port, "sess-1", _provision(http, "sess-1"), clean_start=True)
    try:
        assert reused.session_present is False
        reused.subscribe(desired)
        _server_publish(rt, desired, b"for the new device")
        got = reused.wait_for(b"for the new device")
        assert b"for the deleted device" not in [m[1] for m in got], got
    finally:
        reused.close()


def test_a_resumed_session_takes_over_without_the_old_will_and_a_lost_connection_publishes_it(api) -> None:
    http, rt = api
    presence = topics.presence("sess-2")
    password = _provision(http, "sess-2")
    watcher = Device(rt.broker_port, WATCHER, rt.broker_password, clean_start=True)
    watcher.subscribe(presence)
    old = Device(rt.broker_port, "sess-2", password, clean_start=True, will=True)
    old.client.loop_stop()  # its connection stays open, silent: the broker still believes it alive
    try:
        # A reconnect meanwhile (the device lost the connection, the broker has not noticed): a takeover.
        new = Device(rt.broker_port, "sess-2", password, clean_start=False, will=True)
        assert new.session_present is True
        new.client.publish(presence, b"online", qos=1, retain=True).wait_for_publish(10)
        got = watcher.wait_for(b"online")
        assert [m[1] for m in got if m[0] == presence] == [b"online"], got  # no offline before it
        new.die()
        got = watcher.wait_for(b"offline")  # the will of a connection that died, session or not
        assert [m[1] for m in got if m[0] == presence] == [b"online", b"offline"], got
    finally:
        watcher.close()


def test_a_deleted_device_leaves_no_retained_desired_state_or_presence(api) -> None:
    """A device provisioned later under a deleted one's id must not start from its desired state (its sequence
    number would make the new device refuse the server's own) nor inherit its presence."""
    http, rt = api
    assert rt.link is not None
    _provision(http, "gone-1")
    desired, presence = topics.desired("gone-1"), topics.presence("gone-1")
    for topic, payload in [(desired, b"old desired state"), (presence, b"old presence")]:
        rt.link.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)

    def retained_now() -> list[tuple[str, bytes, bool]]:
        watcher = Device(rt.broker_port, WATCHER, rt.broker_password, clean_start=True)
        try:
            watcher.subscribe(desired)
            watcher.subscribe(presence)
            _server_publish(rt, desired, b"marker")
            return [m for m in watcher.wait_for(b"marker") if m[1] != b"marker"]
        finally:
            watcher.close()

    assert sorted(retained_now()) == [(desired, b"old desired state", True), (presence, b"old presence", True)]
    assert http.delete("/api/v1/devices/gone-1").status_code == 204
    assert retained_now() == []
    reused = Device(rt.broker_port, "gone-1", _provision(http, "gone-1"), clean_start=True)
    try:
        reused.subscribe(desired)
        _server_publish(rt, desired, b"after")
        assert reused.wait_for(b"after") == [(desired, b"after", False)]
    finally:
        reused.close()


def test_a_deletion_the_broker_cannot_clear_changes_nothing(api) -> None:
    http, rt = api
    _provision(http, "kept-1")
    broker = rt.broker
    assert broker is not None and broker._proc is not None
    broker._proc.kill()
    r = http.delete("/api/v1/devices/kept-1")
    assert r.status_code == 503, r.text
    assert "nothing was changed" in r.json()["detail"]
    assert http.get("/api/v1/devices/kept-1").status_code == 200
