"""The identity plugin inside a real Mosquitto: what it accepts, what it refuses, and who may drive it."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tinyfleet.protocol import topics
from tinyfleet.server.broker import identities
from tinyfleet.server.broker.passwords import hash_password
from tinyfleet.server.workers.broker_process import EmbeddedBroker

from .. import srv_raw_connect as raw
from ..srv_fleet import wait_until
from ..srv_mqtt_client import TestClient

SERVER_PW = "server-secret"


@pytest.fixture
def broker(tmp_path: Path):
    b = EmbeddedBroker(tmp_path / "broker", server_user="fleet-server", server_password=SERVER_PW,
                       extra_server_users=["replica-2"])  # fmt: skip
    b.start({"devA": hash_password("pwA"), "devB": hash_password("pwB")})
    yield b
    b.stop()


def _plant_outside(broker: EmbeddedBroker, password: str) -> list[Path]:
    """Files holding a valid hash of `password` where a path built from a hostile username could lead."""
    planted = [broker.workdir / "x", broker.workdir / "outside", broker.identities_dir / "x",
               broker.identities_dir / identities.SERVER_DIR / "devA"]  # fmt: skip
    for p in planted:
        p.write_text(hash_password(password))
    return planted


HOSTILE = [
    b"../x", b"../../x", b"..", b".", b"./devA", b"../outside", b"/etc/passwd", b"00/../../x", b"server/devA",
    b"devA\x00", b"devA\x00../x", b"devA\n", b"\ndevA", b"devA ", b"x" * 65, b"x" * 65535, b"d\xc3\xa9v",
    b"\xff\xfe", b"+", b"#", b"devA/#", b"", b"-devA", b"$SYS",
]  # fmt: skip


@pytest.mark.parametrize("username", HOSTILE, ids=lambda u: repr(u[:20]))
def test_hostile_usernames_are_refused_without_reaching_outside_files(broker: EmbeddedBroker,
                                                                       username: bytes) -> None:  # fmt: skip
    planted = _plant_outside(broker, "pw")
    for password in (b"pw", b"pwA"):
        assert raw.connack_code(broker.port, username, password) in (raw.NOT_AUTHORIZED, None), username
    assert all(p.read_text().startswith("$7$") for p in planted)  # nothing was changed either
    assert raw.connack_code(broker.port, b"devA", b"pwA") == raw.ACCEPTED  # the broker is still serving


def test_identity_files_that_are_not_a_hash_or_not_a_file_are_refused(broker: EmbeddedBroker, tmp_path: Path) -> None:
    good = hash_password("pw")
    for content in ("", "pw", good[:-4], good + "\n\n", good.replace("$7$", "$6$"), "$7$0$" + good.split("$", 3)[3],
                    "$7$99999999999$" + good.split("$", 3)[3], good + "x" * 300):  # fmt: skip
        broker.identity_file("devA").write_text(content)
        assert raw.connack_code(broker.port, b"devA", b"pw") == raw.NOT_AUTHORIZED, content
    broker.identity_file("devA").write_text(good + "\n")  # one newline, as mosquitto_passwd ends a line
    assert raw.connack_code(broker.port, b"devA", b"pw") == raw.ACCEPTED
    outside = tmp_path / "elsewhere"
    outside.write_text(good)
    broker.identity_file("devA").unlink()
    broker.identity_file("devA").symlink_to(outside)  # never followed
    assert raw.connack_code(broker.port, b"devA", b"pw") == raw.NOT_AUTHORIZED


class Requester:
    """An MQTT client that sends identity-plugin requests and collects the answers addressed to it."""

    def __init__(self, port: int, user: str, password: str) -> None:
        self.answers: list[bytes] = []
        self._got = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(user, password)
        self.client.on_message = self._on_message
        connected = threading.Event()
        self.client.on_connect = lambda *_a: connected.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert connected.wait(5)

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._got:
            self.answers.append(bytes(msg.payload))
            self._got.notify_all()

    def ask(self, payload: bytes, timeout: float = 3.0) -> bytes | None:
        before = len(self.answers)
        self.client.publish(identities.CONTROL_TOPIC, payload, qos=1).wait_for_publish(5)
        with self._got:
            self._got.wait_for(lambda: len(self.answers) > before, timeout)
            return self.answers[before] if len(self.answers) > before else None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_server_user_drops_a_session_and_learns_what_the_file_holds(broker: EmbeddedBroker) -> None:
    dev = TestClient(broker.port, "devA", "pwA")
    server = Requester(broker.port, "replica-2", SERVER_PW)
    try:
        assert dev.wait_connected()
        assert server.ask(b"apply r1 devA") == b"r1 present"
        assert dev.dropped.wait(5)
        broker.set_identity("devB", None)
        assert server.ask(b"apply r2 devB") == b"r2 absent"
        broker.identity_file("devA").write_text("garbage")
        assert server.ask(b"apply r3 devA") == b"r3 invalid"
        # the server's own sessions are not the plugin's to drop, and requests out of the grammar get nothing
        assert server.ask(b"apply r4 fleet-server") == b"r4 refused"
        assert server.ask(b"apply r5 ../x") == b"r5 refused"
        assert server.ask(b"apply r9  devA") == b"r9 refused"  # the username is " devA"
        for bad in (b"apply", b"apply r6", b"kick r7 devA", b"apply ../r8 devA", b"\x00" * 8):
            assert server.ask(bad, timeout=0.5) is None, bad
    finally:
        server.close()
        dev.close()


def test_a_device_cannot_drive_the_plugin_or_hear_its_answers(broker: EmbeddedBroker) -> None:
    victim = TestClient(broker.port, "devB", "pwB")
    attacker = Requester(broker.port, "devA", "pwA")
    try:
        assert victim.wait_connected()
        attacker.client.subscribe([("$CONTROL/#", 1), ("#", 1)])
        assert attacker.ask(b"apply a1 devB", timeout=1.0) is None  # PUBACK 135 from the ACL; no answer
        assert not victim.dropped.is_set()
        server = Requester(broker.port, "fleet-server", SERVER_PW)
        try:
            assert server.ask(b"apply s1 devA") == b"s1 present"  # the attacker's own session is dropped
        finally:
            server.close()
        assert attacker.answers == []
        assert not victim.dropped.is_set()
    finally:
        victim.close()
        attacker.close()


def test_identities_survive_a_broker_restart_and_start_removes_what_the_database_lost(broker: EmbeddedBroker) -> None:
    broker.set_identity("devC", hash_password("pwC"))
    stray = broker.identity_file("devZ")
    stray.write_text(hash_password("pwZ"))
    (stray.parent / ".devZ.tmp123").write_text("half")  # a temporary file a crash left behind
    broker.stop()
    broker.start({"devA": hash_password("pwA"), "devC": hash_password("pwC")})
    assert raw.connack_code(broker.port, b"devC", b"pwC") == raw.ACCEPTED
    assert raw.connack_code(broker.port, b"devA", b"pwA") == raw.ACCEPTED
    for user, pw in ((b"devB", b"pwB"), (b"devZ", b"pwZ")):
        assert raw.connack_code(broker.port, user, pw) == raw.NOT_AUTHORIZED
    files = sorted(str(p.relative_to(broker.identities_dir)) for p in broker.identities_dir.rglob("*") if p.is_file())
    assert files == sorted([str(identities.relative_path(u, broker.server_users))
                            for u in ("devA", "devC", "fleet-server", "replica-2")])  # fmt: skip
    assert os.stat(broker.identities_dir).st_mode & 0o777 == 0o700
    assert topics.shard("devC") in {p.parent.name for p in broker.identities_dir.rglob("devC")}


def test_a_dropped_device_hears_administrative_action_and_its_will_is_published(broker: EmbeddedBroker) -> None:
    server = Requester(broker.port, "fleet-server", SERVER_PW)
    reasons: list[int] = []
    dropped = threading.Event()
    dev = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="devA", protocol=mqtt.MQTTv5)
    dev.username_pw_set("devA", "pwA")
    dev.will_set(topics.presence("devA"), b"offline-will", qos=1, retain=True)
    dev.on_disconnect = lambda _c, _u, _f, rc, _p: (reasons.append(rc.value), dropped.set())
    dev.connect("127.0.0.1", broker.port)
    dev.loop_start()
    try:
        server.client.subscribe(topics.presence("devA"), qos=1)
        assert wait_until(dev.is_connected, 5)
        server.ask(b"apply w1 devA")
        assert dropped.wait(5) and reasons[0] == 0x98  # MQTT v5: administrative action
        # the will (as for a lost connection), published before the plugin answered
        assert wait_until(lambda: len(server.answers) >= 2, 5)
        assert server.answers[:2] == [b"offline-will", b"w1 present"]
    finally:
        dev.loop_stop()
        server.close()
