"""The running server's parts, wired together: database, broker, MQTT link, ingest, rollout engine.

`FleetRuntime.start()` migrates the database (refusing an unknown revision), starts (or adopts) the
embedded Mosquitto with every provisioned device's identity, connects the server's MQTT session,
starts ingest, publishes every device's desired state from the database again, and starts the engine.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from tinyfleet.bundles import TrustedKeys, load_private_key
from tinyfleet.protocol import partitions, topics
from tinyfleet.server.broker import fleet_ca, identities
from tinyfleet.server.broker.cluster_identities import ClusterCredentialSink
from tinyfleet.server.broker.config import BrokerLimits, render_acl, render_password_file
from tinyfleet.server.broker.fleet_ca import BrokerCertificate, CaError, Certificate
from tinyfleet.server.broker.passwords import hash_password
from tinyfleet.server.db import migrate
from tinyfleet.server.db.engine import make_engine
from tinyfleet.server.files import private_dir, private_file, tighten, write_atomic
from tinyfleet.server.metrics import Metrics
from tinyfleet.server.services import devices, retention, tokens
from tinyfleet.server.services import fleet_ca as ca_service
from tinyfleet.server.services.bundles import LibraryModelGate, ModelGate
from tinyfleet.server.services.credential_sync import ShardLocks
from tinyfleet.server.settings import Settings
from tinyfleet.server.workers.broker_control import BrokerControl
from tinyfleet.server.workers.broker_process import BrokerError, EmbeddedBroker
from tinyfleet.server.workers.ingest_slots import IngestSlots
from tinyfleet.server.workers.ingest_worker import IngestWorker
from tinyfleet.server.workers.leader import LeaderLock
from tinyfleet.server.workers.mqtt_link import Incoming, MqttLink
from tinyfleet.server.workers.publisher import Publisher
from tinyfleet.server.workers.retained_guard import RetainedGuard
from tinyfleet.server.workers.rollout_engine import RolloutEngine
from tinyfleet.server.workers.tls_probe import presented_fingerprint

log = logging.getLogger("tinyfleet.server")
SWITCH_TIMEOUT_S = 10.0  # a broker certificate switch: from SIGHUP to the new certificate in a handshake


class EmbeddedCredentialSink:
    """One identity file per device in the embedded broker, each change confirmed by its identity plugin."""

    def __init__(self, broker: EmbeddedBroker, control: Callable[[], BrokerControl | None]) -> None:
        self.broker, self._control = broker, control
        self.reserved = frozenset(broker.server_users)
        self.exclusive = ShardLocks()

    def write(self, device_id: str, password_hash: str | None) -> None:
        try:
            self.broker.set_identity(device_id, password_hash)
        except (OSError, ValueError) as exc:
            raise BrokerError(f"cannot write {device_id!r}'s identity: {exc}") from exc

    def confirm(self, device_id: str, present: bool) -> None:
        self.confirm_many([device_id], present)

    def write_many(self, hashes: Mapping[str, str | None]) -> None:
        """Every one is tried, also after one failed (so undoing a batch removes every file it can); then the
        first failure is raised."""
        failed: BrokerError | None = None
        for device_id, password_hash in hashes.items():
            try:
                self.write(device_id, password_hash)
            except BrokerError as exc:
                failed = failed or exc
        if failed is not None:
            raise failed

    def confirm_many(self, device_ids: Sequence[str], present: bool) -> None:
        control = self._control()
        if control is None:
            raise BrokerError("the server is not connected to the broker")
        states = control.apply_many(device_ids)
        expected = identities.PRESENT if present else identities.ABSENT
        wrong = [(d, states[d]) for d in device_ids if states[d] != expected]
        if wrong:
            more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
            raise BrokerError(f"the broker reads {wrong[0][0]!r}'s identity as {wrong[0][1]}, not {expected}{more}")


class ExportedCredentialSink:
    """External broker: the server cannot change its users, so it writes Mosquitto-format password and ACL
    files to a directory for the broker's operator to install (docs/operations.md). Each change rewrites the
    whole password file (O(fleet)); changes are made one at a time so each file holds the database's state."""

    def __init__(self, directory: Path, server_users: list[str], read_hashes: Callable[[], Mapping[str, str]]) -> None:
        self.directory, self.server_users, self._read_hashes = directory, server_users, read_hashes
        self.reserved = frozenset(server_users)
        self._lock = threading.Lock()

    def exclusive(self, device_id: str) -> threading.Lock:
        return self._lock  # one for all devices: every write holds every device

    def write(self, device_id: str, password_hash: str | None) -> None:
        """The committed devices with this one change on top (it may not be committed yet: a deletion)."""
        hashes = dict(self._read_hashes())
        hashes.pop(device_id, None)
        if password_hash is not None:
            hashes[device_id] = password_hash
        self.export(hashes)

    def write_many(self, hashes: Mapping[str, str | None]) -> None:
        """One export for the whole batch."""
        current = dict(self._read_hashes())
        for device_id, password_hash in hashes.items():
            current.pop(device_id, None)
            if password_hash is not None:
                current[device_id] = password_hash
        self.export(current)

    def confirm(self, device_id: str, present: bool) -> None:
        """The operator installs the files: nothing to wait for."""

    def confirm_many(self, device_ids: Sequence[str], present: bool) -> None:
        """The operator installs the files: nothing to wait for."""

    def export(self, device_hashes: Mapping[str, str]) -> None:
        try:
            passwords = render_password_file(device_hashes, reserved=self.reserved)
        except ValueError as exc:
            raise BrokerError(str(exc)) from None
        private_dir(self.directory)
        write_atomic(self.directory / "passwords", passwords)
        write_atomic(self.directory / "acl", render_acl(self.server_users))


class FleetRuntime:
    def __init__(self, settings: Settings, *, gate: ModelGate | None = None) -> None:
        self.settings = settings
        self.engine: Engine = make_engine(settings.resolved_database_url)
        self.metrics = Metrics()
        self.keys = TrustedKeys.from_pem_files(settings.trusted_key_files)
        self.signing_key = load_private_key(settings.signing_key_file) if settings.signing_key_file else None
        self.gate: ModelGate | None = gate if gate is not None else (
            LibraryModelGate() if settings.run_model_gate else None
        )  # fmt: skip
        self.broker: EmbeddedBroker | None = None
        self.broker_password = settings.broker_password or secrets.token_urlsafe(24)
        # the fleet's first trust anchors (services/fleet_ca.py seeds them once); read here, so an unreadable
        # file stops the start, not a request
        self.ca_seed: list[Certificate] = []
        if settings.broker_tls and settings.broker_ca_file:
            where = settings.broker_ca_file
            try:
                text = where.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise BrokerError(f"broker_ca_file {where}: cannot read it as PEM text ({exc})") from None
            try:
                self.ca_seed = fleet_ca.parse_certificates(text, f"broker_ca_file {where}")
            except CaError as exc:
                raise BrokerError(str(exc)) from None
        self.broker_trust_pem: str | None = None  # every anchor the fleet hands out, as the server started
        self.credential_sink: devices.CredentialSink
        if settings.broker_mode == "embedded":
            self.broker = EmbeddedBroker(
                settings.broker_dir,
                server_user=settings.broker_username,
                server_password=self.broker_password,
                extra_server_users=settings.broker_replica_users,
                tls=(settings.broker_tls_cert_file, settings.broker_tls_key_file)  # type: ignore[arg-type]
                if settings.broker_tls
                else None,
                bind=settings.broker_host,
                port=settings.broker_port,
                mosquitto_bin=settings.mosquitto_bin,
                run_as=settings.resolved_broker_user,
                limits=BrokerLimits(
                    max_inflight_messages=settings.broker_max_inflight_messages,
                    max_queued_messages=settings.broker_max_queued_messages,
                    max_queued_bytes=settings.broker_max_queued_bytes,
                    max_session_expiry_s=settings.broker_max_session_expiry_s,
                ),
            )
            self.credential_sink = EmbeddedCredentialSink(self.broker, lambda: self.control)
        elif settings.broker_mode == "cluster":
            assert settings.cluster_store_url is not None
            self.credential_sink = ClusterCredentialSink(
                settings.cluster_store_url, [settings.broker_username, *settings.broker_replica_users], ShardLocks()
            )
        else:
            self.credential_sink = ExportedCredentialSink(
                settings.data_dir / "broker-export", [settings.broker_username, *settings.broker_replica_users],
                self._all_hashes,
            )  # fmt: skip
        self.link: MqttLink | None = None
        self.control: BrokerControl | None = None
        self.guard: RetainedGuard | None = None
        self.publisher: Publisher | None = None
        self.ingest: IngestWorker | None = None
        self.slots: IngestSlots | None = None
        self.rollouts: RolloutEngine = RolloutEngine(
            self.engine,
            None,
            bundle_dir=settings.bundle_dir,
            interval_s=settings.engine_interval_s,
            housekeeping=self._purge_telemetry,
            leader=LeaderLock(self.engine),
            presence_timeout_s=settings.presence_timeout_s,
        )
        self.started = False

    @property
    def broker_port(self) -> int:
        return self.broker.port if self.broker else self.settings.broker_port

    @property
    def broker_host(self) -> str:
        return self.settings.broker_host

    def start(self) -> None:
        if self.started:
            return
        s = self.settings
        self._secure_data_dir()
        rev = migrate.upgrade(self.engine)
        log.info("database at schema revision %s", rev)
        with Session(self.engine) as session:
            if s.bootstrap_admin_token:
                tokens.ensure_bootstrap(session, s.bootstrap_admin_token)
        if s.broker_tls:
            self._prepare_ca()
        hashes = self._all_hashes()
        if self.broker is not None:
            self.broker.start(hashes)
            log.info("mosquitto listening on %s:%d", self.broker.bind, self.broker.port)
        elif isinstance(self.credential_sink, ClusterCredentialSink):
            self.credential_sink.register_server_user(s.broker_username, hash_password(self.broker_password))
            fixed = self.credential_sink.sync(hashes)
            log.info("cluster identity store in sync with %d device(s) (%d key(s) fixed)", len(hashes), fixed)
        else:
            assert isinstance(self.credential_sink, ExportedCredentialSink)
            self.credential_sink.export(hashes)

        self.ingest = IngestWorker(
            self.engine, ack=lambda item: self._ack(item), metrics=self.metrics,
            drift_threshold=s.drift_alert_threshold, shift_threshold=s.drift_shift_threshold,
            on_outcome=lambda: self.rollouts.poke(),
        )  # fmt: skip
        self.guard = RetainedGuard(
            topics.server_marker(s.broker_username),
            publish=lambda topic, payload: self._link().publish(topic, payload, retain=True),
            on_lost=self._republish,
        )
        cluster = s.broker_mode == "cluster"
        self.link = self._new_link(s.broker_username, on_reconnect=self.guard.reconnected)  # client id = username
        if cluster:
            self.link.connect([self.guard.topic])  # device messages come through the ingest slots' sessions
        else:
            share = f"$share/{s.ingest_share_group}/" if s.ingest_share_group else ""
            self.link.connect(
                [share + topics.STATE_ALL, share + topics.TELEMETRY_ALL, topics.PRESENCE_ALL, self.guard.topic]
            )
        if self.broker is not None:
            link = self.link
            self.control = BrokerControl(lambda t, p: link.publish(t, p, retain=False, wait=False, qos=2),
                                         link.wait_connected)  # fmt: skip
        self.ingest.start()
        if cluster:
            self.slots = IngestSlots(self.engine, s.ingest_slots, self._open_slot)
            self.slots.start()
        self.publisher = Publisher(self.link, self.metrics, after_publish=self.guard.stamp)
        self.rollouts.publisher = self.publisher
        self._republish()
        self.rollouts.start()
        self.started = True

    def _prepare_ca(self) -> None:
        """Seed the fleet's trust anchors on the first start, and choose the certificate the embedded broker
        serves (broker/fleet_ca.py, choose_served)."""
        with Session(self.engine) as session:
            seeded = ca_service.seed(session, self.ca_seed, time.time())
            if seeded:
                log.info("the fleet's broker trust anchors: the %d certificate(s) of broker_ca_file", seeded)
            self.broker_trust_pem = ca_service.handout(session)[0]
            rows = ca_service.anchors(session)
            if self.broker is None or not rows:
                return
            roles = {r.fingerprint: r.role for r in rows}
            certs = [fleet_ca.parse_certificates(r.pem, "a stored CA")[0] for r in rows]
            now = time.time()
            configured: BrokerCertificate | CaError
            try:
                s = self.settings
                assert s.broker_tls_cert_file is not None and s.broker_tls_key_file is not None
                chain, key = s.broker_tls_cert_file.read_text(), s.broker_tls_key_file.read_text()
                configured = fleet_ca.check_broker_certificate(chain, key, certs, now)
            except (OSError, UnicodeDecodeError) as exc:
                configured = CaError(f"cannot read it ({exc})")
            except CaError as exc:
                configured = exc
            kept_pem = self.broker.kept_certificate()
            kept = None
            if kept_pem is not None:
                with contextlib.suppress(CaError):
                    kept = fleet_ca.check_broker_certificate(kept_pem, kept_pem, certs, now)
            try:
                chosen, note = fleet_ca.choose_served(configured, kept, roles)
            except CaError as exc:
                raise BrokerError(str(exc)) from None
            if note:
                log.warning(note)
            if ca_service.complete_switch(session, chosen.issuer):
                self.broker_trust_pem = ca_service.handout(session)[0]
            self.broker.use_certificate(chosen.pem)

    # --- the fleet CA rotation's broker side (services/fleet_ca.py, CertificateServer) ---

    def served(self) -> str | None:
        host = "127.0.0.1" if self.broker_host in ("0.0.0.0", "") else self.broker_host
        return presented_fingerprint(host, self.broker_port)

    def serve(self, cert: BrokerCertificate) -> Callable[[], None]:
        broker = self.broker
        if broker is None:
            raise BrokerError("the broker is external: its certificate is its operator's to install")
        before = broker.kept_certificate()
        if before is None:
            raise BrokerError(f"{broker.certificate_file} is missing")

        def put_back() -> None:
            broker.use_certificate(before)
            broker.reload()

        broker.use_certificate(cert.pem)
        try:
            broker.reload()
            deadline = time.monotonic() + SWITCH_TIMEOUT_S
            while self.served() != cert.leaf.fingerprint:
                if time.monotonic() > deadline:
                    raise BrokerError(f"it did not present the new certificate within {SWITCH_TIMEOUT_S:g} s")
                time.sleep(0.1)
        except BaseException:
            with contextlib.suppress(Exception):  # the file is back either way; the first failure is the news
                put_back()
            raise
        return put_back

    def trust(self, ca_pem: str) -> None:
        """The server's own link accepts a CA added to the rotation, before the broker switches to it."""
        if self.link is not None:
            self.link.trust(ca_pem)

    def _new_link(self, client_id: str, on_reconnect: Callable[[], None] | None = None,
                  keep_session_subs: bool = False) -> MqttLink:  # fmt: skip
        s = self.settings
        nodes = s.node_addresses if s.broker_mode == "cluster" else [(self.broker_host, self.broker_port)]
        return MqttLink(
            nodes[0][0], nodes[0][1], s.broker_username, self.broker_password, client_id=client_id,
            on_message=self._on_message, tls=s.broker_tls, ca_file=s.broker_ca_file, ca_pem=self.broker_trust_pem,
            on_reconnect=on_reconnect,
            protocol="3.1.1" if s.broker_mode == "cluster" else "5", more_nodes=nodes[1:],
            keep_session_subs=keep_session_subs,
        )  # fmt: skip

    def _open_slot(self, slot: int) -> MqttLink:
        """Connect one ingest slot's persistent session (workers/ingest_slots.py)."""
        link = self._new_link(partitions.slot_client_id(slot), keep_session_subs=True)
        link.connect(partitions.slot_filters(slot, self.settings.ingest_slots))
        return link

    def _secure_data_dir(self) -> None:
        """Data directory 0700 and every file in it 0600, also those an older server left world-readable.
        When Mosquitto runs as its own user its directory is inside: the data directory is then 0710 with
        that user's group, which lets the broker through to its directory and nothing else."""
        s = self.settings
        owner = None
        if self.broker is not None and self.broker.user.pw_uid != os.getuid():
            owner = (os.getuid(), self.broker.user.pw_gid)
        private_dir(s.data_dir, mode=0o710 if owner else 0o700, owner=owner)
        private_dir(s.bundle_dir)
        for stored in s.bundle_dir.iterdir():
            tighten(stored)
        db = s.sqlite_path
        if db is not None:
            private_file(db)  # SQLite creates its -wal and -shm files with the database file's mode
            for side in ("-wal", "-shm"):
                tighten(db.with_name(db.name + side))
        tighten(s.data_dir / "server.lock")

    def _link(self) -> MqttLink:
        assert self.link is not None
        return self.link

    def _republish(self) -> None:
        nb, nd = self.rollouts.republish()
        log.info("republished %d bundle(s) and the desired state of %d device(s)", nb, nd)

    def _all_hashes(self) -> dict[str, str]:
        with Session(self.engine) as session:
            return devices.all_hashes(session)

    def _on_message(self, item: Incoming) -> None:
        if item.topic == identities.RESPONSE_TOPIC:  # the identity plugin's answers (broker_control.py)
            if self.control is not None:
                self.control.received(item.payload)
            self._ack(item)
            return
        if self.guard is not None and item.topic == self.guard.topic:
            self.guard.marker_received(item.payload)
            self._ack(item)
            return
        assert self.ingest is not None
        self.ingest.submit(item)

    def _purge_telemetry(self, now: float) -> None:
        with Session(self.engine) as session:
            n = retention.purge_telemetry(session, now, self.settings.telemetry_retention_days * 86400)
        if n:
            log.info("purged %d telemetry records older than %g days", n, self.settings.telemetry_retention_days)

    def _ack(self, item: Incoming) -> None:
        link = item.link or self.link
        if link is not None:
            link.ack(item)

    def stop(self) -> None:
        if self.guard is not None:
            self.guard.stop()
        self.rollouts.stop()
        if self.slots is not None:
            self.slots.stop()
        if self.ingest is not None:
            self.ingest.stop()
        if self.link is not None:
            self.link.close()
        if self.broker is not None:
            self.broker.stop()
        self.engine.dispose()
        self.started = False
