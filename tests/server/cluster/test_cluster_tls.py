"""The clustered broker for production: nodes that speak only TLS and take a new certificate on SIGHUP, on a
Redis that asks for a password. Judged by what real MQTT 3.1.1 clients and a real Redis client get."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import redis
from paho.mqtt.enums import CallbackAPIVersion

from tinyfleet.protocol import topics
from tinyfleet.server.broker.cluster_node import node_command
from tinyfleet.server.broker.loopback_cluster import free_port, wait_for_line
from tinyfleet.server.broker.passwords import hash_password

from ..srv_pki import make_ca, make_server
from .client311 import Client311
from .conftest import SERVER_PW, SERVER_USER, start_cluster

REDIS_PASSWORD = "cluster-store-secret"


def test_nodes_speak_only_tls_and_reload_their_certificate(tmp_path: Path) -> None:
    old_ca, new_ca = make_ca("fleet broker CA 1"), make_ca("fleet broker CA 2")
    cert, key = make_server(old_ca).write(tmp_path, "node")
    ca_old, ca_new = tmp_path / "ca-old.pem", tmp_path / "ca-new.pem"
    ca_old.write_bytes(old_ca.pem)
    ca_new.write_bytes(new_ca.pem)
    with start_cluster(tmp_path, tls=(cert, key), redis_password=REDIS_PASSWORD) as c:
        (h1, p1), (h2, p2) = c.nodes
        c.sink.write("devA", hash_password("pwA"))
        c.sink.confirm("devA", True)
        server = Client311(h2, p2, SERVER_USER, SERVER_PW, tls_ca=ca_old)
        assert server.connected()
        server.subscribe(topics.state("devA"))
        a = Client311(h1, p1, "devA", "pwA", tls_ca=ca_old)
        assert a.connected()
        a.publish(topics.state("devA"), b"over-tls")
        assert server.wait_for(topics.state("devA"), b"over-tls")  # TLS on both nodes, across Redis

        plain = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="devA", protocol=mqtt.MQTTv311)
        plain.username_pw_set("devA", "pwA")
        answers: list[object] = []  # any CONNACK
        plain.on_connect = lambda *args: answers.append(args[3])
        plain.connect(h1, p1, keepalive=5)  # a TCP connection is made; the CONNECT in clear text is not MQTT here
        plain.loop_start()
        time.sleep(1.0)
        plain.loop_stop()
        assert answers == [], "a node with a TLS listener answered a CONNECT sent in clear text"

        with pytest.raises(ssl.SSLCertVerificationError):  # a device that trusts only the next CA, before
            Client311(h1, p1, "devA", "pwA", tls_ca=ca_new, reconnect=False)

        key_next = make_server(new_ca)  # the operator installs the next certificate, then signals the node
        cert.write_bytes(key_next.pem)
        key.write_bytes(key_next.key_pem)
        node1 = c.procs[1]
        node1.send_signal(signal.SIGHUP)
        wait_for_line(tmp_path / "node1.log", "reloaded its certificate", node1)
        after = Client311(h1, p1, "devA", "pwA", tls_ca=ca_new)
        assert after.connected()
        with pytest.raises(ssl.SSLCertVerificationError):  # only the old anchor: refused after the switch
            Client311(h1, p1, "devA", "pwA", tls_ca=ca_old, reconnect=False)
        for cl in (server, a, after):
            cl.close()


def test_the_identity_store_asks_for_its_password(tmp_path: Path) -> None:
    with start_cluster(tmp_path, nodes=1, redis_password=REDIS_PASSWORD) as c:
        port = int(c.procs[0].args[c.procs[0].args.index("--port") + 1])  # type: ignore[union-attr]
        anonymous = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
        with pytest.raises(redis.AuthenticationError):
            anonymous.set("tinyfleet:identity:device:intruder", hash_password("x"))  # no way to add a user
        anonymous.close()
        assert c.sink.redis.get("tinyfleet:identity:server:" + SERVER_USER) is not None  # the server's URL has it
        assert "redis.conf" in " ".join(map(str, c.procs[0].args))  # type: ignore[arg-type]
        assert REDIS_PASSWORD not in " ".join(map(str, c.procs[1].args))  # type: ignore[arg-type]
        assert oct(os.stat(tmp_path / "redis.conf").st_mode & 0o777) == "0o600"

        wrong = tmp_path / "wrong.secret"
        wrong.write_text("not-the-password\n")
        for secret, says in ((wrong, "WRONGPASS"), (None, "NOAUTH")):
            cmd = node_command("bad", "127.0.0.1", free_port(), "127.0.0.1", port, redis_password_file=secret)
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            assert out.returncode == 2, out
            assert f"Redis at 127.0.0.1:{port}: {says}" in out.stderr, out.stderr
            assert "    at " not in out.stderr, "a stack trace instead of one line"
