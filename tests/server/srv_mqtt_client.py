"""A plain paho MQTT v5 client for tests: records what arrives, publishes and waits for PUBACKs."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool


class TestClient:
    __test__ = False  # not a pytest class

    def __init__(
        self,
        port: int,
        username: str,
        password: str,
        client_id: str | None = None,
        will: tuple[str, bytes] | None = None,
        ca_file: Path | None = None,
    ) -> None:
        """`ca_file`: connect with TLS, verifying the broker's certificate and name against these CAs."""
        self.messages: list[Received] = []
        self._cv = threading.Condition()
        self._connected = threading.Event()
        self.dropped = threading.Event()  # the broker ended a session this client had (paho then reconnects)
        self.connect_rc: ReasonCode | None = None
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or username, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(username, password)
        if ca_file is not None:
            self.client.tls_set(ca_certs=str(ca_file), cert_reqs=ssl.CERT_REQUIRED)
        if will:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_a: self.dropped.set()
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()

    def _on_connect(self, _c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        self.connect_rc = rc
        self._connected.set()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._cv:
            self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain)))
            self._cv.notify_all()

    def wait_connected(self, timeout: float = 5.0) -> bool:
        """True if the broker accepted the connection."""
        if not self._connected.wait(timeout):
            return False
        return self.connect_rc is not None and not self.connect_rc.is_failure

    def subscribe(self, topic: str, qos: int = 1) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *_a: done.set()
        self.client.subscribe(topic, qos)
        assert done.wait(5), f"no SUBACK for {topic}"

    def subscribe_many(self, topics: list[str], qos: int = 1) -> None:
        """One SUBSCRIBE for all of them (a granted SUBACK says nothing about what will be delivered)."""
        done = threading.Event()
        self.client.on_subscribe = lambda *_a: done.set()
        self.client.subscribe([(t, qos) for t in topics])
        assert done.wait(5), f"no SUBACK for {len(topics)} topics"

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=Properties(3))
        info.wait_for_publish(5)

    def wait_for(self, pred: Callable[[Received], bool], timeout: float = 5.0, count: int = 1) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                hits = [m for m in self.messages if pred(m)]
                if len(hits) >= count or time.monotonic() >= deadline:
                    return hits
                self._cv.wait(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
