"""The broker CA rotation's checks and steps, pure: every refusal names its problem; the step table holds for
every phase; the certificate served at start follows choose_served's rules."""

from __future__ import annotations

import time

import pytest

from tinyfleet.server.broker import fleet_ca
from tinyfleet.server.broker.fleet_ca import ADDED, CURRENT, NEXT, PREVIOUS, STEADY, STEPS, SWITCHED, CaError

from ..srv_pki import DAY, NOW, key_pem, make_ca, make_server

T = time.time()


def test_a_ca_is_one_valid_ca_certificate() -> None:
    ca = make_ca("fleet CA 2")
    got = fleet_ca.parse_ca(ca.pem, T)
    assert (got.fingerprint, got.subject) == (ca.fingerprint, "CN=fleet CA 2")
    assert fleet_ca.parse_ca(make_ca("with usage", key_cert_sign=True).pem, T).subject == "CN=with usage"
    refusals = {
        b"hello": "the new CA: no PEM certificate in it",
        b"": "the new CA: no PEM certificate in it",
        ca.pem + make_ca("other").pem: "the new CA: 2 certificates; give one CA certificate",
        make_ca("leaf", ca=False).pem: "the new CA (CN=leaf) is not a CA certificate",
        make_ca("no sign", key_cert_sign=False).pem: "(CN=no sign) may not sign certificates",
        make_ca("old", start=NOW - 10 * DAY, end=NOW - DAY).pem: "the new CA (CN=old) expired at ",
        make_ca("early", start=NOW + DAY, end=NOW + 9 * DAY).pem: "the new CA (CN=early) is not valid before ",
        ca.key_pem: "the new CA: no PEM certificate in it",
    }
    for pem, message in refusals.items():
        with pytest.raises(CaError, match=message.replace("(", r"\(").replace(")", r"\)")):
            fleet_ca.parse_ca(pem, T)


def test_a_broker_certificate_is_checked_against_its_key_chain_and_the_anchors() -> None:
    a, b = make_ca("A"), make_ca("B")
    anchors = [fleet_ca.parse_ca(a.pem, T), fleet_ca.parse_ca(b.pem, T)]
    srv = make_server(b)
    ok = fleet_ca.check_broker_certificate(srv.pem, srv.key_pem, anchors, T)
    assert ok.issuer == b.fingerprint and ok.leaf.fingerprint == srv.fingerprint
    assert ok.pem.startswith(srv.pem.decode()) and ok.pem.endswith(srv.key_pem.decode())
    # the combined file checks the same way (the broker's kept certificate is read back like this)
    assert fleet_ca.check_broker_certificate(ok.pem, ok.pem, anchors, T).leaf == ok.leaf
    inter = make_ca("B intermediate", issuer=b)
    via = make_server(inter)
    assert fleet_ca.check_broker_certificate(via.pem + inter.pem, via.key_pem, anchors, T).issuer == b.fingerprint

    stranger = make_server(make_ca("stranger"))
    refusals = [
        (srv.pem, make_server(b).key_pem, "the broker key does not match the broker certificate"),
        (srv.pem, key_pem(srv.key, b"secret"), "the key is encrypted; give it without a passphrase"),
        (srv.pem, b"not a key", "the broker key file: no PEM private key in it"),
        (b"", srv.key_pem, "the broker certificate file: no PEM certificate in it"),
        (stranger.pem, stranger.key_pem, r"is not issued by any of the fleet's CAs \(CN=A; CN=B\)"),
        (via.pem, via.key_pem, r"issued by CN=B intermediate\) is not issued by any of the fleet's CAs"),
    ]
    for chain, key, message in refusals:
        with pytest.raises(CaError, match=message):
            fleet_ca.check_broker_certificate(chain, key, anchors, T)


def test_refusals_that_need_the_right_key() -> None:
    """Expired and out-of-order chains refused for that reason, with the matching key."""
    b = make_ca("B")
    anchors = [fleet_ca.parse_ca(b.pem, T)]
    old = make_server(b, start=NOW - 9 * DAY, end=NOW - DAY)
    with pytest.raises(CaError, match=r"the broker certificate \(CN=broker 127.0.0.1\) expired at "):
        fleet_ca.check_broker_certificate(old.pem, old.key_pem, anchors, T)
    inter = make_ca("I", issuer=b)
    via = make_server(inter)
    with pytest.raises(CaError, match=r"certificate 0 \(CN=broker 127.0.0.1\) is not issued by the one after it"):
        fleet_ca.check_broker_certificate(via.pem + b.pem, via.key_pem, anchors, T)


def _roles(phase: str) -> dict[str, str]:
    return {STEADY: {"a": CURRENT}, ADDED: {"a": CURRENT, "b": NEXT}, SWITCHED: {"a": PREVIOUS, "b": CURRENT}}[phase]


def test_every_step_in_every_phase_follows_the_table() -> None:
    subjects = {"a": "CN=A", "b": "CN=B", "c": "CN=C"}
    for (phase, name), after in STEPS.items():
        roles = _roles(phase)
        assert fleet_ca.phase(roles) == phase
        arg = "add:c" if name == "add" else name
        if after.startswith("refused: "):
            with pytest.raises(CaError) as e:
                fleet_ca.step(roles, arg, subjects)
            msg = str(e.value)
            assert "{" not in msg and ("CN=" in msg or msg.startswith("no new CA was added")), msg
            continue
        changes = fleet_ca.step(roles, arg, subjects)
        new = {f: r for f, r in (roles | changes).items() if r is not None}
        assert fleet_ca.phase(new) == after, (phase, name, new)
    # the whole rotation, then each step again changes nothing
    roles = {"a": CURRENT}
    roles |= fleet_ca.step(roles, "add:b", subjects)  # type: ignore[arg-type]
    assert roles == {"a": CURRENT, "b": NEXT} and fleet_ca.step(roles, "add:b", subjects) == {}
    roles = fleet_ca.step(roles, "switch", subjects)  # type: ignore[assignment]
    assert roles == {"a": PREVIOUS, "b": CURRENT}
    assert fleet_ca.step(roles, "retire", subjects) == {"a": None}
    assert fleet_ca.step({"b": CURRENT}, "retire", subjects) == {}
    assert fleet_ca.step({"b": CURRENT}, "cancel", subjects) == {}
    assert fleet_ca.step({"a": CURRENT, "b": NEXT}, "cancel", subjects) == {"b": None}
    with pytest.raises(CaError, match="CN=A is the CA the fleet is moving away from: retire it first"):
        fleet_ca.step({"a": PREVIOUS, "b": CURRENT}, "add:a", subjects)
    assert fleet_ca.step({"a": PREVIOUS, "b": CURRENT}, "add:b", subjects) == {}  # already current


def test_the_certificate_served_at_start() -> None:
    a, b = make_ca("A"), make_ca("B")
    anchors = [fleet_ca.parse_ca(a.pem, T), fleet_ca.parse_ca(b.pem, T)]
    sa, sb = make_server(a), make_server(b)
    from_a = fleet_ca.check_broker_certificate(sa.pem, sa.key_pem, anchors, T)
    from_b = fleet_ca.check_broker_certificate(sb.pem, sb.key_pem, anchors, T)
    added = {a.fingerprint: CURRENT, b.fingerprint: NEXT}
    switched = {a.fingerprint: PREVIOUS, b.fingerprint: CURRENT}
    steady_b = {b.fingerprint: CURRENT}
    # the configured files while they are from a current CA (a renewal needs only new files and a restart)
    assert fleet_ca.choose_served(from_a, None, added) == (from_a, None)
    assert fleet_ca.choose_served(from_b, from_b, switched) == (from_b, None)
    # a switch that reached the broker but was not recorded
    chosen, note = fleet_ca.choose_served(from_a, from_b, added)
    assert chosen == from_b and note is not None and "recording it now" in note
    # the settings still name the old CA's files after the rotation: the switched certificate stays
    chosen, note = fleet_ca.choose_served(from_a, from_b, switched)
    assert chosen == from_b and note is not None and "issued by the fleet's previous CA" in note
    gone = CaError("the broker certificate ... is not issued by any of the fleet's CAs (CN=B)")
    chosen, note = fleet_ca.choose_served(gone, from_b, steady_b)
    assert chosen == from_b and note is not None and "not issued by any" in note
    # the settings name the next CA's files before any switch: never a silent switch
    chosen, note = fleet_ca.choose_served(from_b, from_a, added)
    assert chosen == from_a and note is not None and "issued by the fleet's next CA" in note
    with pytest.raises(CaError, match="issued by the fleet's next CA, not by a current one"):
        fleet_ca.choose_served(from_b, None, added)
    with pytest.raises(CaError, match="broker_tls_cert_file, broker_tls_key_file: the broker key does not match"):
        fleet_ca.choose_served(CaError("the broker key does not match ..."), None, added)
