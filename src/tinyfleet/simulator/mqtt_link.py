"""MQTT for thousands of simulated devices on one asyncio loop: paho-mqtt's external-loop socket API.

Each device gets its own paho client (its own credentials, will and session settings from
docs/device-protocol.md: MQTT v5, Clean Start and Session Expiry as the agent asks, Keep Alive 60 s, Maximum
Packet Size and Receive Maximum advertised). A new paho client per connect is right for a resumed session
too: what the broker keeps for the device it sends again, and the agent re-sends its own unacknowledged
reports. No client has a thread: its socket is registered with the loop
(`add_reader` -> `loop_read`, `add_writer` -> `loop_write`) and one periodic task calls every client's
`loop_misc` for keep-alives. paho's callbacks therefore run on the loop, one at a time, which is what the
sans-I/O agent core needs: every event is fed to it to completion before the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

KEEPALIVE_S = 60
MAX_PACKET = 16384  # >= 5120 (the largest meta or block plus topic and header)
RECEIVE_MAX = 16  # >= the agent's block window (4)


class LinkEvents(Protocol):
    """What a link tells its device (all called on the loop)."""

    def on_link_up(self, session_present: bool) -> None: ...
    def on_link_down(self) -> None: ...
    def on_link_message(self, topic: str, payload: bytes) -> None: ...
    def on_link_puback(self, mid: int) -> None: ...


@dataclass
class Credentials:
    host: str
    port: int
    username: str
    password: str
    client_id: str
    protocol: str = "5"  # "3.1.1" for the clustered broker (Clean Session 1, no properties)
    more_nodes: tuple[tuple[str, int], ...] = ()  # other broker nodes, tried in turn after a failed or lost connection
    bind_address: str | None = None  # the local address to connect from (None: the system picks)

    def __post_init__(self) -> None:
        if self.protocol not in ("5", "3.1.1"):
            raise ValueError(f"MQTT protocol {self.protocol!r}: expected '5' or '3.1.1'")


@dataclass
class LinkStats:
    sent: int = 0
    received: int = 0
    connects: int = 0
    connect_failures: int = 0
    # While a Counter: messages sent or received by (payload bytes, QoS), for the benchmark's replay.
    sizes: Counter[tuple[int, int]] | None = None


@functools.cache
def connect_properties(session_expiry_s: int) -> Properties:
    """The CONNECT properties, the same for every device asking for this session expiry: one object that every
    client keeps (paho only packs it), not one per client (a Properties carries about 2 KB of tables)."""
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = session_expiry_s
    props.MaximumPacketSize = MAX_PACKET
    props.ReceiveMaximum = RECEIVE_MAX
    return props


class Link:
    """One device's MQTT connection. `connect` is a blocking TCP connect (fast on localhost)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, creds: Credentials, events: LinkEvents,
                 stats: LinkStats) -> None:  # fmt: skip
        self.loop, self.creds, self.events, self.stats = loop, creds, events, stats
        self.client: mqtt.Client | None = None
        self.connected = False
        self.connected_at = 0.0  # time.monotonic() of the current (or last) connection's CONNACK
        self.dropped = 0  # established connections that ended from the other side (broker gone, socket reset)
        self._sock: socket.socket | None = None
        self._node = 0
        self.dropped_since_connect = False

    @property
    def address(self) -> tuple[str, int]:
        """The broker node this link is connected to, or tries next."""
        nodes = [(self.creds.host, self.creds.port), *self.creds.more_nodes]
        return nodes[self._node % len(nodes)]

    def _address(self, advance: bool) -> tuple[str, int]:
        nodes = [(self.creds.host, self.creds.port), *self.creds.more_nodes]
        self._node = (self._node + advance) % len(nodes)
        return nodes[self._node]

    def connect(self, will: tuple[str, bytes, int, bool], clean_start: bool = True, session_expiry_s: int = 0) -> bool:
        """Connect with this will, starting a new session (clean_start) or resuming the broker's; False if the
        broker cannot be reached right now."""
        host, port = self._address(advance=self.dropped_since_connect)
        self.dropped_since_connect = False
        self.close(graceful=False)
        v5 = self.creds.protocol == "5"
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.creds.client_id,
                        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)  # fmt: skip
        c.username_pw_set(self.creds.username, self.creds.password)
        topic, payload, qos, retain = will
        c.will_set(topic, payload, qos=qos, retain=retain)
        c.on_socket_open = self._sock_open
        c.on_socket_close = self._sock_close
        c.on_socket_register_write = self._want_write
        c.on_socket_unregister_write = self._no_write
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_publish = self._on_publish
        self.client = c
        bind = self.creds.bind_address or ""
        try:
            if v5:
                c.connect(host, port, keepalive=KEEPALIVE_S, clean_start=clean_start,
                          properties=connect_properties(session_expiry_s), bind_address=bind)
            else:  # MQTT 3.1.1 (the clustered broker): Clean Session 1 always, as 3.1.1 has no session expiry
                c.connect(host, port, keepalive=KEEPALIVE_S, bind_address=bind)
        except OSError:
            self.stats.connect_failures += 1
            self.client = None
            self.dropped_since_connect = True  # try the next node next time
            return False
        sock = c.socket()
        try:
            # TCP self-connect: with the broker down, a retry whose ephemeral port equals the broker's port
            # connects to itself and would keep the broker from binding its port when it comes back.
            bad = sock is not None and sock.getsockname() == sock.getpeername()
        except OSError:  # reset already (e.g. the broker reloading): a failed attempt like any other
            bad = True
        if bad:
            self.stats.connect_failures += 1
            self.close(graceful=False)
            return False
        return True

    def close(self, graceful: bool, goodbye: bool = False) -> None:
        """graceful: a DISCONNECT (no will); otherwise the socket just dies (the broker publishes the will).
        goodbye (with graceful): a DISCONNECT with reason 0x04 "disconnect with will message", so the broker
        publishes the will (offline presence) although the device left cleanly."""
        c, self.client = self.client, None
        was = self.connected
        self.connected = False
        if c is None:
            return
        if graceful and was:
            # paho writes the DISCONNECT through the loop's writer, then closes the socket (on_socket_close)
            self._sock = None
            c.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, identifier=4) if goodbye else None)
            return
        sock = self._sock
        if sock is not None:
            self._forget(sock)
            with contextlib.suppress(OSError):
                sock.close()
        self._sock = None
        c.on_disconnect = None
        c.on_socket_close = None

    # --- actions ------------------------------------------------------------------------------------------

    def subscribe(self, topic: str, qos: int, retain_handling: int = 0) -> None:
        """retain_handling 1: the topic's retained message only if the broker does not hold this subscription."""
        if self.connected and self.client is not None:
            self.client.subscribe(topic, options=SubscribeOptions(qos=qos, retainHandling=retain_handling))

    def unsubscribe(self, topic: str) -> None:
        if self.connected and self.client is not None:
            self.client.unsubscribe(topic)

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> int | None:
        if not self.connected or self.client is None:
            return None
        self.stats.sent += 1
        if self.stats.sizes is not None:
            self.stats.sizes[(len(payload), qos)] += 1
        return self.client.publish(topic, payload, qos=qos, retain=retain).mid

    def misc(self) -> None:
        if self.client is not None:
            self.client.loop_misc()

    # --- paho's socket hooks and callbacks ----------------------------------------------------------------

    def _sock_open(self, client: mqtt.Client, _u: object, sock: socket.socket) -> None:
        self._sock = sock
        self.loop.add_reader(sock, client.loop_read)

    def _sock_close(self, _c: mqtt.Client, _u: object, sock: socket.socket) -> None:
        self._forget(sock)

    def _forget(self, sock: socket.socket) -> None:
        with contextlib.suppress(ValueError, OSError):
            self.loop.remove_reader(sock)
            self.loop.remove_writer(sock)

    def _want_write(self, client: mqtt.Client, _u: object, sock: socket.socket) -> None:
        if sock.fileno() < 0:
            return  # closed under paho's feet (a power cut mid-read): the packet dies with the connection
        self.loop.add_writer(sock, client.loop_write)

    def _no_write(self, _c: mqtt.Client, _u: object, sock: socket.socket) -> None:
        with contextlib.suppress(ValueError, OSError):
            self.loop.remove_writer(sock)

    def _on_connect(self, client: mqtt.Client, _u: object, flags: mqtt.ConnectFlags, rc: object, _p: object) -> None:
        if client is not self.client:
            return
        if getattr(rc, "is_failure", False):
            self.stats.connect_failures += 1
            self.close(graceful=False)
            self.events.on_link_down()
            return
        self.connected = True
        self.connected_at = time.monotonic()
        self.stats.connects += 1
        self.events.on_link_up(flags.session_present)

    def _on_disconnect(self, client: mqtt.Client, *_a: object) -> None:
        if client is not self.client:
            return
        if self.connected:
            self.dropped += 1
        self.dropped_since_connect = True
        self.close(graceful=False)
        self.events.on_link_down()

    def _on_message(self, client: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        if client is self.client:
            self.stats.received += 1
            if self.stats.sizes is not None:
                self.stats.sizes[(len(msg.payload), msg.qos)] += 1
            self.events.on_link_message(msg.topic, bytes(msg.payload))

    def _on_publish(self, client: mqtt.Client, _u: object, mid: int, _rc: object, _p: object) -> None:
        if client is self.client:
            self.events.on_link_puback(mid)


async def misc_task(links: Callable[[], list[Link]], period_s: float = 1.0) -> None:
    """Keep-alives and paho's housekeeping for every client, from one task."""
    while True:
        await asyncio.sleep(period_s)
        for link in links():
            link.misc()
