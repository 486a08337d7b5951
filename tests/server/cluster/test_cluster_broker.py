"""The clustered broker (two nodes on one Redis) enforces the device protocol's identities and ACL and shares
sessions and retained messages between nodes: judged by what real MQTT 3.1.1 clients receive."""

from __future__ import annotations

import time

import pytest

from tinyfleet.protocol import partitions, topics
from tinyfleet.server.broker.cluster_identities import ClusterIdentityError
from tinyfleet.server.broker.passwords import hash_password

from .client311 import Client311
from .conftest import SERVER_PW, SERVER_USER, Cluster


def _devices(c: Cluster, **pws: str) -> None:
    for dev, pw in pws.items():
        c.sink.write(dev, hash_password(pw))
        c.sink.confirm(dev, True)


def _settle() -> None:
    time.sleep(0.5)  # let in-flight deliveries arrive before asserting that something did NOT arrive


def test_devices_reach_the_server_across_nodes_and_only_their_own_topics(cluster: Cluster) -> None:
    (h1, p1), (h2, p2) = cluster.nodes
    _devices(cluster, devA="pwA", devB="pwB")
    server = Client311(h2, p2, SERVER_USER, SERVER_PW)
    assert server.connected()
    server.subscribe("fleet/d/+/+/state")
    a = Client311(h1, p1, "devA", "pwA")
    b = Client311(h2, p2, "devB", "pwB")
    assert a.connected() and b.connected()
    b.subscribe("fleet/d/+/devA/desired")  # another device's topic: refused
    b.subscribe("#")
    a.publish(topics.state("devA"), b"a-own")
    assert server.wait_for(topics.state("devA"), b"a-own")  # published on node 1, received on node 2
    a.client.publish(topics.state("devB"), b"a-as-b", qos=1)  # A writing B's topic
    # the server user publishes A's desired state on node 1, retained; A reads it on node 2 after a reconnect
    pub = Client311(h1, p1, SERVER_USER, SERVER_PW)
    assert pub.connected()
    pub.publish(topics.desired("devA"), b"want-1", retain=True)
    a2 = Client311(h2, p2, "devA", "pwA")
    assert a2.connected()
    a2.subscribe(topics.desired("devA"))
    assert a2.wait_for(topics.desired("devA"), b"want-1")
    pub.publish("fleet/_server/fleet-server/marker", b"m", retain=True)
    _settle()
    assert (topics.state("devB"), b"a-as-b") not in server.messages
    assert b.messages == []  # neither A's desired state nor anything else under `#`
    for c in (server, a, b, pub, a2):
        c.close()


def test_connect_is_refused_without_the_right_identity(cluster: Cluster) -> None:
    (h1, p1), (h2, p2) = cluster.nodes
    _devices(cluster, devA="pwA")
    tries = [
        ("devA", "wrong", "devA"),  # wrong password
        ("devA", "pwA", "devB"),  # client id is not the username
        ("devZ", "pwA", "devZ"),  # no such identity
        ("devA", "pwA", partitions.slot_client_id(0)),  # a device cannot hold an ingest slot's session
        (SERVER_USER, "wrong", SERVER_USER),
    ]
    for user, pw, cid in tries:
        c = Client311(h1, p1, user, pw, client_id=cid, reconnect=False)
        assert not c.connected(), (user, pw, cid)
        c.close()
    ok = Client311(h2, p2, SERVER_USER, SERVER_PW, client_id=partitions.slot_client_id(7))
    assert ok.connected()
    ok.close()


def test_revoking_and_rotating_drop_the_live_session_on_every_node(cluster: Cluster) -> None:
    (h1, p1), (h2, p2) = cluster.nodes
    _devices(cluster, devA="pwA", devB="pwB")
    server = Client311(h1, p1, SERVER_USER, SERVER_PW)
    assert server.connected()
    server.subscribe("fleet/d/+/+/state")
    a = Client311(h2, p2, "devA", "pwA")  # on the other node than the server's change
    b = Client311(h2, p2, "devB", "pwB")
    assert a.connected() and b.connected()

    cluster.sink.write("devA", None)
    cluster.sink.confirm("devA", False)
    assert a.dropped.wait(10)
    a.refused.clear()
    assert a.refused.wait(10)  # paho reconnects with the old password: refused
    a.client.publish(topics.state("devA"), b"after-revoke", qos=1)

    cluster.sink.write("devB", hash_password("pwB2"))
    cluster.sink.confirm("devB", True)
    assert b.dropped.wait(10)
    old = Client311(h1, p1, "devB", "pwB", reconnect=False)
    assert not old.connected()
    new = Client311(h1, p1, "devB", "pwB2")
    assert new.connected()
    new.publish(topics.state("devB"), b"rotated")
    assert server.wait_for(topics.state("devB"), b"rotated")
    _settle()
    assert (topics.state("devA"), b"after-revoke") not in server.messages
    for c in (server, a, b, old, new):
        c.close()


def test_a_batch_of_identities_takes_effect_on_every_node_at_once(cluster: Cluster) -> None:
    """The batch provisioning path (write_many, confirm_many): every device of the batch connects at once on
    either node, a batch revocation drops and refuses them all, and a store that does not hold what was written
    is refused by name."""
    (h1, p1), (h2, p2) = cluster.nodes
    batch = {f"bat-{i}": f"pw-{i}" for i in range(6)}
    cluster.sink.write_many({d: hash_password(pw) for d, pw in batch.items()})
    cluster.sink.confirm_many(list(batch), True)
    clients = [Client311(*(cluster.nodes[i % 2]), d, pw) for i, (d, pw) in enumerate(batch.items())]
    assert all(c.connected() for c in clients)
    cluster.sink.write_many(dict.fromkeys(batch))
    cluster.sink.confirm_many(list(batch), False)
    assert all(c.dropped.wait(10) for c in clients)
    for c in clients:
        c.close()
    assert not Client311(h1, p1, "bat-0", "pw-0", reconnect=False).connected()
    assert not Client311(h2, p2, "bat-1", "pw-1", reconnect=False).connected()

    cluster.sink.write_many({"bat-9": hash_password("pw-9")})
    cluster.sink.redis.delete("tinyfleet:identity:device:bat-9")  # the store lost it before the read-back
    with pytest.raises(ClusterIdentityError, match="holds absent for 'bat-9'"):
        cluster.sink.confirm_many(["bat-9"], True)


def test_a_slot_session_keeps_its_messages_while_away_and_hands_them_to_any_node(cluster: Cluster) -> None:
    (h1, p1), (h2, p2) = cluster.nodes
    _devices(cluster, devA="pwA")
    slot = partitions.slot_client_id(int(topics.shard("devA"), 16) % 4)
    s1 = Client311(h1, p1, SERVER_USER, SERVER_PW, client_id=slot, clean=False)
    assert s1.connected()
    s1.subscribe(f"fleet/d/{topics.shard('devA')}/+/state")
    s1.close()
    a = Client311(h2, p2, "devA", "pwA")
    assert a.connected()
    for n in range(3):
        a.publish(topics.state("devA"), f"queued-{n}".encode())  # PUBACKed: stored for the session
    s2 = Client311(h2, p2, SERVER_USER, SERVER_PW, client_id=slot, clean=False)
    assert s2.connected()
    for n in range(3):
        assert s2.wait_for(topics.state("devA"), f"queued-{n}".encode())
    for c in (a, s2):
        c.close()
