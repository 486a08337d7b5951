"""The server's own MQTT connection: publishes with QoS 1 and receives device messages with manual acks.

Incoming messages are acknowledged only after they are persisted (`ack`), and the session survives a
server restart (fixed client id, Clean Start 0, long session expiry), so a report the broker accepted from a
device is never lost: if the server dies before committing it, the broker delivers it again.

MQTT v5 by default; "3.1.1" for the clustered broker (Clean Session 0: the session lasts until a clean
connect). Given several broker nodes, a lost connection is retried on the next node in turn.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

log = logging.getLogger("tinyfleet.server.mqtt")

SESSION_EXPIRY_S = 7 * 24 * 3600


@dataclass(frozen=True)
class Incoming:
    topic: str
    payload: bytes
    mid: int
    qos: int
    retain: bool
    link: MqttLink | None = field(default=None, compare=False, repr=False)  # the connection to acknowledge on


class LinkError(RuntimeError):
    """The broker could not be reached or refused the server."""


class MqttLink:
    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        client_id: str,
        on_message: Callable[[Incoming], None],
        *,
        tls: bool = False,
        ca_file: Path | None = None,
        ca_pem: str | None = None,
        on_reconnect: Callable[[], None] | None = None,
        protocol: Literal["5", "3.1.1"] = "5",
        more_nodes: list[tuple[str, int]] | None = None,
        keep_session_subs: bool = False,
    ) -> None:
        """keep_session_subs: after a CONNACK whose session is present, do not subscribe again (a new SUBSCRIBE
        would make the broker send every retained message under the filters once more)."""
        self._keep_session_subs = keep_session_subs
        self._host, self._port = host, port
        self._nodes = [(host, port), *(more_nodes or [])]
        self._node = 0
        self.v5 = protocol == "5"
        self._on_reconnect = on_reconnect
        self._ever_connected = False
        self._on_message = on_message
        self._subs: list[str] = []
        self._connected = threading.Event()
        self._failure: str | None = None
        if self.v5:
            self.client = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True
            )
        else:
            self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311,
                                      clean_session=False, manual_ack=True)  # fmt: skip
        self.client.username_pw_set(username, password)
        self._tls: ssl.SSLContext | None = None
        if tls:  # verifies the broker's certificate and name against ca_file and ca_pem (else the system's CAs)
            self._tls = ssl.create_default_context(cafile=str(ca_file) if ca_file else None,
                                                   cadata=ca_pem or None)  # fmt: skip
            self.client.tls_set_context(self._tls)
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(0)
        # back within 2 s of the broker's return: credential changes wait for this session (broker_control.py)
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.on_connect = self._handle_connect
        self.client.on_disconnect = self._handle_disconnect
        self.client.on_connect_fail = self._handle_connect_fail
        self.client.on_message = self._handle_message

    def trust(self, ca_pem: str) -> None:
        """Also accept broker certificates from these CAs, from the next connection on (a CA rotation's new
        CA, before the broker switches to it)."""
        if self._tls is not None:
            self._tls.load_verify_locations(cadata=ca_pem)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def connect(self, subscriptions: list[str], timeout: float = 10.0) -> None:
        self._subs = list(subscriptions)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        props.ReceiveMaximum = 1000
        errors = []
        for _ in self._nodes:
            try:
                if self.v5:
                    self.client.connect(self._host, self._port, keepalive=30, clean_start=False, properties=props)
                else:
                    self.client.connect(self._host, self._port, keepalive=30)
                break
            except OSError as exc:
                errors.append(f"{self._host}:{self._port}: {exc}")
                self._next_node()
        else:
            raise LinkError(f"cannot reach the broker at {', '.join(errors)}")
        self.client.loop_start()
        if not self._connected.wait(timeout):
            self.client.loop_stop()
            raise LinkError(self._failure or f"no CONNACK from {self._host}:{self._port} within {timeout} s")

    def _handle_connect(self, client: mqtt.Client, _u: object, flags: object, rc: object, _p: object) -> None:
        if getattr(rc, "is_failure", False):
            self._failure = f"broker refused the server's connection: {rc}"
            log.error(self._failure)
            return
        kept = self._keep_session_subs and getattr(flags, "session_present", False)
        for topic in [] if kept else self._subs:
            if self.v5:
                client.subscribe(topic, options=SubscribeOptions(qos=1))
            else:
                client.subscribe(topic, qos=1)
        self._connected.set()
        log.info("connected to broker %s:%d", self._host, self._port)
        if self._ever_connected and self._on_reconnect is not None:
            self._on_reconnect()
        self._ever_connected = True

    def _handle_disconnect(self, *_a: object) -> None:
        self._connected.clear()
        if len(self._nodes) > 1:
            self._next_node()
        log.warning("disconnected from broker; paho reconnects to %s:%d", self._host, self._port)

    def _handle_connect_fail(self, *_a: object) -> None:
        if len(self._nodes) > 1:
            self._next_node()

    def _next_node(self) -> None:
        self._node = (self._node + 1) % len(self._nodes)
        self._host, self._port = self._nodes[self._node]
        # paho's next reconnect reads these; its public setters refuse while a lost connection is torn down
        self.client._host, self.client._port = self._host, self._port

    def _handle_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        self._on_message(Incoming(msg.topic, bytes(msg.payload), msg.mid, msg.qos, bool(msg.retain), self))

    def ack(self, item: Incoming) -> None:
        if item.qos > 0:
            self.client.ack(item.mid, item.qos)

    def publish(self, topic: str, payload: bytes, *, retain: bool, wait: bool = True,
                qos: int = 1) -> mqtt.MQTTMessageInfo:  # fmt: skip
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_NO_CONN:
            raise LinkError(f"publish to {topic} failed: {mqtt.error_string(info.rc)}")
        if wait:
            info.wait_for_publish(30)
        return info

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self._connected.clear()
