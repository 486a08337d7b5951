"""The generated Mosquitto configuration isolates devices: checked by what arrives, not by return codes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tinyfleet.protocol import topics
from tinyfleet.server.broker.config import render_acl, render_password_file
from tinyfleet.server.broker.passwords import check_password, hash_password
from tinyfleet.server.workers.broker_process import EmbeddedBroker

from ..srv_mqtt_client import TestClient

SERVER_PW = "server-secret"


def test_hash_matches_mosquitto_passwd_format() -> None:
    # produced by `mosquitto_passwd -c -b pw dev1 secret` on Debian's mosquitto 2.0.11
    ref = (
        "$7$101$X24AvvpNRVVcnro5$"
        "2pJqlgtIxxvndcA1fGFDOvzidaNEoPCRG0TZ5CQc+y6jNTFSxRS8DUzPZhY4gR1HNtHoURMBQC7VbGNHtBSsew=="
    )
    assert check_password("secret", ref)
    assert not check_password("Secret", ref)
    assert check_password("x", hash_password("x"))


def test_acl_is_the_same_for_any_fleet_and_names_no_device() -> None:
    acl = render_acl(["fleet-server", "replica-2"])
    assert "pattern read fleet/d/+/%u/desired" in acl and "pattern write fleet/d/+/%u/state" in acl
    assert "user replica-2\ntopic readwrite fleet/#" in acl
    with pytest.raises(ValueError, match="cannot appear in a password file"):
        render_password_file({"dev:1": hash_password("x")})


@pytest.fixture
def broker(tmp_path: Path):
    b = EmbeddedBroker(tmp_path / "broker", server_user="fleet-server", server_password=SERVER_PW)
    b.start({"devA": hash_password("pwA"), "devB": hash_password("pwB")})
    yield b
    b.stop()


def _settle() -> None:
    time.sleep(0.3)  # let in-flight deliveries arrive before asserting that something did NOT arrive


def test_device_cannot_read_or_write_another_devices_topics(broker: EmbeddedBroker) -> None:
    server = TestClient(broker.port, "fleet-server", SERVER_PW)
    a = TestClient(broker.port, "devA", "pwA")
    b = TestClient(broker.port, "devB", "pwB")
    try:
        assert server.wait_connected() and a.wait_connected() and b.wait_connected()
        server.subscribe("fleet/#")
        # A tries to eavesdrop on everything of B's, B listens to its own desired topic
        for t in (topics.desired("devB"), topics.state("devB"), topics.telemetry("devB"), "fleet/d/+/+/desired"):
            a.subscribe(t)
        a.subscribe(topics.desired("devA"))
        b.subscribe(topics.desired("devB"))
        b.subscribe("fleet/bundles/#")

        server.publish(topics.desired("devB"), b"for-B", retain=True)
        server.publish(topics.desired("devA"), b"for-A", retain=True)
        server.publish("fleet/bundles/abc/meta", b"meta", retain=True)
        b.publish(topics.state("devB"), b"B-state")
        a.publish(topics.state("devB"), b"forged-by-A")  # A impersonates B
        a.publish(topics.presence("devB"), b"forged-presence", retain=True)
        a.publish(topics.state("devA"), b"A-state")
        a.publish("fleet/bundles/abc/meta", b"A-overwrites-meta", retain=True)

        assert [m.payload for m in b.wait_for(lambda m: m.topic == topics.desired("devB"))] == [b"for-B"]
        assert b.wait_for(lambda m: m.topic == "fleet/bundles/abc/meta")[0].payload == b"meta"
        assert server.wait_for(lambda m: m.payload == b"A-state")
        assert server.wait_for(lambda m: m.payload == b"B-state")
        _settle()
        a_topics = {m.topic for m in a.messages}
        assert a_topics == {topics.desired("devA")}, a_topics
        forged = [m for m in server.messages if m.payload.startswith((b"forged", b"A-overwrites"))]
        assert forged == []
        assert [m.payload for m in b.messages if m.topic == "fleet/bundles/abc/meta"] == [b"meta"]
    finally:
        for c in (server, a, b):
            c.close()


def test_a_device_cannot_take_over_another_devices_session(broker: EmbeddedBroker) -> None:
    b = TestClient(broker.port, "devB", "pwB")
    assert b.wait_connected()
    intruder = TestClient(broker.port, "devA", "pwA", client_id="devB")  # devB's client id, devA's credentials
    try:
        assert intruder.wait_connected()  # admitted, but as client "devA" (use_username_as_clientid)
        b.subscribe(topics.desired("devB"))  # devB's connection is still the one holding that id
        server = TestClient(broker.port, "fleet-server", SERVER_PW)
        assert server.wait_connected()
        server.publish(topics.desired("devB"), b"still-B")
        assert b.wait_for(lambda m: m.payload == b"still-B")
        server.close()
    finally:
        intruder.close()
        b.close()


def test_wrong_password_and_unknown_device_are_rejected(broker: EmbeddedBroker) -> None:
    bad = TestClient(broker.port, "devA", "wrong")
    ghost = TestClient(broker.port, "devC", "pwC")
    try:
        assert not bad.wait_connected()
        assert not ghost.wait_connected()
    finally:
        bad.close()
        ghost.close()


def test_device_added_while_running_connects_on_its_first_try(broker: EmbeddedBroker) -> None:
    """One identity file written, no reload: the next CONNECT reads it."""
    broker.set_identity("devC", hash_password("pwC"))
    server = TestClient(broker.port, "fleet-server", SERVER_PW)
    c = TestClient(broker.port, "devC", "pwC")
    try:
        assert server.wait_connected() and c.wait_connected()
        c.subscribe(topics.desired("devC"))
        server.publish(topics.desired("devC"), b"hello-C")
        assert c.wait_for(lambda m: m.payload == b"hello-C")
    finally:
        server.close()
        c.close()


def test_plain_subscriptions_survive_a_broker_restart_shared_ones_do_not(tmp_path: Path) -> None:
    """Why the single-server default ingests through plain subscriptions (docs/operations.md): Mosquitto
    2.0.11 restores a persistent session's plain subscriptions from its persistence file, not its shared ones."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    got: dict[str, list[bytes]] = {"plain": [], "shared": []}
    for kind, topic in (("plain", topics.STATE_ALL), ("shared", "$share/g/" + topics.STATE_ALL)):
        work = tmp_path / kind
        b = EmbeddedBroker(work, server_user="fleet-server", server_password=SERVER_PW)
        b.start({"devA": hash_password("pwA")})
        try:
            srv = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="srv-1", protocol=mqtt.MQTTv5)
            srv.username_pw_set("fleet-server", SERVER_PW)
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
            srv.connect("127.0.0.1", b.port, clean_start=False, properties=props)
            srv.loop_start()
            srv.subscribe(topic, qos=1)
            time.sleep(0.3)
            srv.disconnect()
            srv.loop_stop()
            b.stop()
            b = EmbeddedBroker(work, server_user="fleet-server", server_password=SERVER_PW)
            b.start({"devA": hash_password("pwA")})
            dev = TestClient(b.port, "devA", "pwA")
            assert dev.wait_connected()
            dev.publish(topics.state("devA"), b"while-server-away")
            dev.close()
            srv = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="srv-1", protocol=mqtt.MQTTv5)
            srv.username_pw_set("fleet-server", SERVER_PW)
            srv.on_message = lambda _c, _u, m, k=kind: got[k].append(bytes(m.payload))
            srv.connect("127.0.0.1", b.port, clean_start=False, properties=props)
            srv.loop_start()
            time.sleep(0.5)
            srv.disconnect()
            srv.loop_stop()
        finally:
            b.stop()
    assert got == {"plain": [b"while-server-away"], "shared": []}


def test_each_identity_change_holds_on_the_first_try(broker: EmbeddedBroker) -> None:
    """No retry, no sleep: each device added in a burst connects on its first try, each revoked one is
    refused on its first try."""
    for i in range(15):
        broker.set_identity(f"burst-{i}", hash_password(f"pw-{i}"))
        assert _accepted(broker.port, f"burst-{i}", f"pw-{i}")
    for i in range(15):
        broker.set_identity(f"burst-{i}", None)
        assert not _accepted(broker.port, f"burst-{i}", f"pw-{i}")
    assert not _accepted(broker.port, "devA", "wrong") and _accepted(broker.port, "devA", "pwA")


def _accepted(port: int, user: str, password: str) -> bool:
    c = TestClient(port, user, password)
    try:
        return c.wait_connected(5)
    finally:
        c.close()
