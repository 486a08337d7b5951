"""A plain paho MQTT 3.1.1 client for the cluster tests: records what arrives, publishes and waits for PUBACKs."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


class Client311:
    def __init__(self, host: str, port: int, username: str, password: str, client_id: str | None = None,
                 clean: bool = True, reconnect: bool = True, tls_ca: Path | None = None) -> None:  # fmt: skip
        self.messages: list[tuple[str, bytes]] = []
        self._cv = threading.Condition()
        self.accepted = threading.Event()
        self.refused = threading.Event()
        self.dropped = threading.Event()  # a session this client had ended from the broker's side
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or username,
                                  protocol=mqtt.MQTTv311, clean_session=clean)  # fmt: skip
        self.client.username_pw_set(username, password)
        if tls_ca is not None:  # the node's certificate verified against this CA, its name included
            self.client.tls_set(ca_certs=str(tls_ca))
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.reconnect_delay_set(1, 1)
        self._reconnect = reconnect
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()

    def _on_connect(self, _c: object, _u: object, _f: object, rc: object, _p: object) -> None:
        if getattr(rc, "is_failure", False):
            self.refused.set()
            if not self._reconnect:
                self.client.disconnect()
        else:
            self.accepted.set()

    def _on_disconnect(self, *_a: object) -> None:
        if self.accepted.is_set():
            self.dropped.set()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._cv:
            self.messages.append((msg.topic, bytes(msg.payload)))
            self._cv.notify_all()

    def connected(self, timeout: float = 10.0) -> bool:
        """True once the broker accepted the connection; False once it refused or nothing came in time."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.accepted.is_set():
                return True
            if self.refused.is_set():
                return False
            time.sleep(0.02)
        return False

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *_a: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(10), f"no SUBACK for {topic}"

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def wait_for(self, topic: str, payload: bytes, timeout: float = 10.0) -> bool:
        with self._cv:
            return self._cv.wait_for(lambda: (topic, payload) in self.messages, timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
