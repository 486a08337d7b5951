"""The broker's per-client limits, each exceeded by a device and judged by what real clients receive.

Packet and payload sizes are the protocol's maxima (fixed); queue and in-flight limits are settings, so the
tests that exceed them run a broker with small ones."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tinyfleet.protocol import records, topics
from tinyfleet.server.broker.config import BrokerLimits, render_conf, session_expiry_hours
from tinyfleet.server.broker.passwords import hash_password
from tinyfleet.server.workers.broker_process import EmbeddedBroker
from tinyfleet.server.workers.mqtt_link import SESSION_EXPIRY_S

from ..srv_mqtt_client import TestClient

SERVER_PW = "server-secret"
WILDCARDS = ("#", "fleet/#", "+/#", "$SYS/#")


def _start(tmp_path: Path, limits: BrokerLimits = BrokerLimits()) -> EmbeddedBroker:
    b = EmbeddedBroker(tmp_path / "broker", server_user="fleet-server", server_password=SERVER_PW, limits=limits)
    b.start({"devA": hash_password("pwA"), "devB": hash_password("pwB")})
    return b


def _settle() -> None:
    time.sleep(0.5)  # deliveries in flight arrive before asserting that something did NOT arrive


class RawDevice:
    """A device client with every knob an attacker has: protocol version, session, receive maximum, acks."""

    def __init__(self, port: int, user: str, password: str, *, v5: bool = True, persistent: bool = False,
                 receive_max: int = 0, manual_ack: bool = False) -> None:  # fmt: skip
        self.messages: list[mqtt.MQTTMessage] = []
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.lock = threading.Lock()
        proto = mqtt.MQTTv5 if v5 else mqtt.MQTTv311
        kw = {} if v5 else {"clean_session": not persistent}
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=proto, **kw)
        self.client.username_pw_set(user, password)
        self.client.manual_ack_set(manual_ack)
        self.client.on_connect = lambda *_a: self.connected.set()
        self.client.on_disconnect = lambda *_a: self.disconnected.set()
        self.client.on_message = self._on_message
        self._port, self._v5, self._persistent, self._receive_max = port, v5, persistent, receive_max

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(msg)

    def connect(self) -> RawDevice:
        self.connected.clear()
        self.disconnected.clear()
        if self._v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600 if self._persistent else 0
            if self._receive_max:
                props.ReceiveMaximum = self._receive_max
            self.client.connect("127.0.0.1", self._port, clean_start=not self._persistent, properties=props)
        else:
            self.client.connect("127.0.0.1", self._port)
        self.client.loop_start()
        assert self.connected.wait(5)
        return self

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *_a: done.set()
        self.client.subscribe(topic, 1)
        assert done.wait(5)

    def count(self) -> int:
        with self.lock:
            return len(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_the_conf_carries_the_protocol_maxima() -> None:
    conf = render_conf(port=1, bind="127.0.0.1", plugin=Path("p.so"), identities_dir=Path("i"),
                       server_users=["fleet-server"], acl_file=Path("a"), persistence_dir=Path("d"),
                       run_as_user="mosquitto")  # fmt: skip
    assert f"message_size_limit {records.MAX_PAYLOAD_SIZE}\n" in conf and "max_packet_size 5120\n" in conf
    assert "max_queued_bytes 33554432\n" in conf and "max_inflight_messages 100\n" in conf
    # no session outlives its connection by more than 7 days, whatever a client asks (the server asks that much)
    assert "persistent_client_expiration 168h\n" in conf and SESSION_EXPIRY_S == 7 * 24 * 3600
    # the largest legitimate message with the longest topic fits the packet limit
    longest_topic = topics.blob_block("f" * 64, 4_294_967_295)
    packet = 1 + 4 + 2 + len(longest_topic) + 2 + 1 + records.MAX_PAYLOAD_SIZE  # header, topic, id, props
    assert records.MAX_PAYLOAD_SIZE == records.MAX_META_SIZE == 4864 and packet < records.MAX_PACKET_SIZE


def test_a_session_expiry_cap_is_whole_hours() -> None:
    assert session_expiry_hours(3600) == 1 and session_expiry_hours(7 * 24 * 3600) == 168
    for bad in (0, 59, 3599, 5400):
        with pytest.raises(ValueError, match=f"whole number of hours, not {bad} s"):
            session_expiry_hours(bad)


def test_the_protocol_maxima_match_the_bundle_format() -> None:
    from tinyfleet.bundles.format import MAX_META_PREFIX

    assert records.MAX_META_SIZE == MAX_META_PREFIX
    assert len(records.encode_block(0, bytes(4096))) == records.BLOCK_HEADER_SIZE + records.BLOCK_SIZE


@pytest.mark.parametrize("size,disconnects", [(4865, False), (6000, True), (32 * 1024 * 1024, True)])
def test_a_device_message_above_the_protocol_maximum_is_neither_delivered_nor_retained(
    tmp_path: Path, size: int, disconnects: bool
) -> None:
    broker = _start(tmp_path)
    server = TestClient(broker.port, "fleet-server", SERVER_PW)
    b = TestClient(broker.port, "devB", "pwB")
    # MQTT 3.1.1: the client does not learn the broker's maximum, so nothing stops it from sending
    a = RawDevice(broker.port, "devA", "pwA", v5=False).connect()
    try:
        assert server.wait_connected() and b.wait_connected()
        for w in WILDCARDS:
            server.subscribe(w)
            b.subscribe(w)
        presence = topics.presence("devA")
        largest = b"P" * records.MAX_PAYLOAD_SIZE
        a.client.publish(presence, largest, qos=1, retain=True).wait_for_publish(5)
        assert server.wait_for(lambda m: m.topic == presence and m.payload == largest)

        a.client.publish(presence, b"X" * size, qos=1, retain=True)
        _settle()
        assert not [m for m in server.messages + b.messages if len(m.payload) > records.MAX_PAYLOAD_SIZE]
        assert a.disconnected.wait(5) if disconnects else not a.disconnected.is_set()
        server.close()  # the server user has one session (client id = username): a fresh one replaces it
        fresh = TestClient(broker.port, "fleet-server", SERVER_PW)
        assert fresh.wait_connected()
        fresh.subscribe(presence)
        retained = fresh.wait_for(lambda m: m.topic == presence)
        assert [m.payload for m in retained] == [largest]  # the retained message is still the legitimate one
        fresh.close()
    finally:
        for c in (server, b, a):
            c.close()
        broker.stop()


def _publish_blocks(port: int, n: int) -> None:
    server = TestClient(port, "fleet-server", SERVER_PW)
    assert server.wait_connected()
    for i in range(n):
        server.publish(topics.blob_block("ab" * 32, i), records.encode_block(0, bytes(4096)))
    server.close()


@pytest.mark.parametrize("limits,cap", [
    (BrokerLimits(max_inflight_messages=5, max_queued_messages=10), 10),
    (BrokerLimits(max_inflight_messages=5, max_queued_messages=1000, max_queued_bytes=10 * 4200), 10),
])  # fmt: skip
def test_a_device_that_is_away_gets_at_most_the_queue_limit(tmp_path: Path, limits: BrokerLimits, cap: int) -> None:
    """A device keeps a session, subscribes to every blob and goes away while 200 blocks are published: the
    broker holds only up to the queue limits (count or bytes) for it, plus its in-flight window."""
    broker = _start(tmp_path, limits)
    dev = RawDevice(broker.port, "devA", "pwA", persistent=True).connect()
    try:
        dev.subscribe(topics.BLOBS_ALL)
        dev.close()
        _publish_blocks(broker.port, 200)
        dev.connect()
        _settle()
        got = dev.count()
        assert cap <= got <= cap + limits.max_inflight_messages, got
    finally:
        dev.close()
        broker.stop()


@pytest.mark.parametrize("v5,receive_max", [(False, None), (True, 3)])
def test_a_device_that_never_acknowledges_holds_at_most_its_window(
    tmp_path: Path, v5: bool, receive_max: int | None
) -> None:
    """An MQTT 3.1.1 device gets `max_inflight_messages` unacknowledged messages; an MQTT v5 device gets its
    own Receive Maximum (Mosquitto 2.0 lets it replace the broker's limit). Then nothing until it acks, and
    no more than the queue limit once it does."""
    limits = BrokerLimits(max_inflight_messages=5, max_queued_messages=10)
    window = receive_max or limits.max_inflight_messages
    broker = _start(tmp_path, limits)
    dev = RawDevice(broker.port, "devA", "pwA", v5=v5, receive_max=receive_max or 0, manual_ack=True).connect()
    try:
        dev.subscribe(topics.BLOBS_ALL)
        _publish_blocks(broker.port, 50)
        _settle()
        assert dev.count() == window
        with dev.lock:
            first = list(dev.messages)
        for m in first:
            dev.client.ack(m.mid, m.qos)
        _settle()
        # what the broker held beyond the window comes now; the rest of the 50 was dropped at the queue limit
        assert window < dev.count() <= window + limits.max_queued_messages
    finally:
        dev.close()
        broker.stop()


def test_v5_clients_are_told_the_brokers_receive_maximum(tmp_path: Path) -> None:
    broker = _start(tmp_path, BrokerLimits(max_inflight_messages=7))
    got: list[Properties] = []
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="devA", protocol=mqtt.MQTTv5)
    c.username_pw_set("devA", "pwA")
    c.on_connect = lambda _c, _u, _f, _rc, props: got.append(props)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    try:
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
        assert got and got[0].ReceiveMaximum == 7 and got[0].MaximumPacketSize == records.MAX_PACKET_SIZE
    finally:
        c.disconnect()
        c.loop_stop()
        broker.stop()
