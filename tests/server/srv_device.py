"""A device scripted with a plain paho MQTT client, following docs/device-protocol.md from the device side.

It receives desired state, fetches meta and blocks (copying components it already runs), verifies the whole
bundle with the real verifier, "reboots" into trial, and confirms or fails the health check as scripted.
It reports every transition as TFSR records and sends TFTM telemetry on request.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tinyfleet.bundles import TrustedKeys, VerifyPolicy, parse_bundle, verify_bundle
from tinyfleet.bundles.format import bundle_digest, parse_meta
from tinyfleet.protocol import topics
from tinyfleet.protocol.records import (
    ChannelStats,
    Presence,
    StateReport,
    Telemetry,
    block_count,
    decode_block,
    decode_desired,
)

POWERON, IDLE, CHECKING, DOWNLOADING, REBOOTING, TRIAL, FAILED = 0, 1, 2, 4, 5, 6, 7
EV_BOOT, EV_DESIRED, EV_META, EV_BLOCK, EV_HEALTH = 1, 2, 3, 4, 9
UP_TO_DATE, STAGED, CONFIRMED, HEALTH_OUTPUT_MISMATCH, COUNTER_TOO_LOW = 34, 98, 99, 64, 17
Z = bytes(32)


@dataclass
class Download:
    desired_seq: int
    digest: bytes
    meta: bytes | None = None
    blocks: dict[str, dict[int, bytes]] = field(default_factory=dict)  # sha hex -> index -> data
    copied: dict[str, bytes] = field(default_factory=dict)


def _missing_blocks(dl: Download) -> Iterator[str]:
    assert dl.meta is not None
    for c in parse_meta(dl.meta).components:
        got = dl.blocks.get(c.sha256.hex())
        if got is not None:  # None: copied from the running bundle
            yield from (f"fleet/blobs/{c.sha256.hex()}/b/{i}" for i in range(block_count(c.length)) if i not in got)


class ScriptedDevice:
    def __init__(
        self,
        port: int,
        device_id: str,
        password: str,
        hw: str,
        keys: TrustedKeys,
        running: bytes | None,
        *,
        fails_health_on: set[bytes] | None = None,
        hold_reports: bool = False,
    ) -> None:
        self.id, self.hw, self.keys = device_id, hw, keys
        self.running = running
        # the stored security counter: raised when an update confirms, never lowered (bundle-format.md)
        self.counter = parse_meta(running).manifest.security_counter if running else 0
        self.fails_health_on = fails_health_on or set()  # digests whose health check fails
        self.epoch, self.seq, self.window_seq = 1, 0, 0
        self.highest_desired = 0
        self.failed_attempts: set[tuple[int, bytes]] = set()
        self.desired_seen: list[tuple[int, bytes, bool]] = []  # (desired_seq, digest, rollback flag)
        self.sent_reports: list[bytes] = []
        self.installs: list[bytes] = []
        self.downloaded: list[str] = []  # component hashes fetched as blocks (not copied from the active bank)
        self._dl: Download | None = None
        self._lock = threading.RLock()
        self.hold_reports = hold_reports
        self._held: list[tuple[str, bytes, bool]] = []
        self.hold_blocks = False  # a stalled download: blocks wait until release_blocks()
        self._held_blocks: list[tuple[str, bytes]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_id, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(device_id, password)
        self.client.will_set(topics.presence(device_id), self._presence(0), qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 1)
        self.client.connect("127.0.0.1", port, keepalive=30, clean_start=True)
        self.client.loop_start()

    # --- records -----------------------------------------------------------------------------------------

    @property
    def running_digest(self) -> bytes:
        return bundle_digest(self.running) if self.running else Z

    def _presence(self, status: int) -> bytes:
        now = int(time.time())
        return Presence(status, 1, self.epoch, self.seq, self.running_digest, self.hw, 1 << 22, self.counter,
                        now).encode()  # fmt: skip

    def report(self, frm: int, to: int, ev: int, reason: int = 0, desired_seq: int = 0, target: bytes = Z) -> bytes:
        with self._lock:
            self.seq += 1
            rec = StateReport(frm, to, ev, self.epoch, self.seq, reason, desired_seq, target, self.running_digest,
                              0, 0, int(time.time())).encode()  # fmt: skip
            self.sent_reports.append(rec)
            self._send(topics.state(self.id), rec, retain=False)
            return rec

    def _send(self, topic: str, payload: bytes, retain: bool) -> None:
        if self.hold_reports:  # a slow uplink: state and presence wait until released
            self._held.append((topic, payload, retain))
        else:
            self.client.publish(topic, payload, qos=1, retain=retain)

    def release_reports(self) -> None:
        with self._lock:
            self.hold_reports = False
            held, self._held = self._held, []
        for topic, payload, retain in held:
            self.client.publish(topic, payload, qos=1, retain=retain)

    def republish(self, rec: bytes) -> None:
        """Send a report again, as a QoS 1 redelivery or a late duplicate would."""
        self.client.publish(topics.state(self.id), rec, qos=1).wait_for_publish(5)

    def telemetry(self, inferences: int, alarms: int, hist: tuple[int, ...], channels: list[tuple[int, int]]) -> None:
        with self._lock:
            self.window_seq += 1
            rec = Telemetry(self.epoch, self.window_seq, int(time.time()) - 60, 60, 6000, inferences, alarms, 0,
                            900, 1200, -32768, -32768, -32768, self.running_digest, hist,
                            tuple(ChannelStats(m, v) for m, v in channels)).encode()  # fmt: skip
        self.client.publish(topics.telemetry(self.id), rec, qos=0)

    # --- protocol ----------------------------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, *_a: object) -> None:
        client.publish(topics.presence(self.id), self._presence(1), qos=1, retain=True)
        client.subscribe(topics.desired(self.id), qos=1)
        with self._lock:
            if self._dl is not None:  # resume: subscribe again to what is still missing
                self._request_missing()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            parts = msg.topic.split("/")
            if parts[-1] == "desired":
                self._on_desired(bytes(msg.payload))
            elif parts[-1] == "meta":
                self._on_meta(bytes(msg.payload))
            elif parts[1] == "blobs":
                self._on_block(parts[2], bytes(msg.payload))

    def _on_desired(self, payload: bytes) -> None:
        if not payload:
            return
        d = decode_desired(payload)
        self.desired_seen.append((d.desired_seq, d.digest, d.rollback))
        if d.desired_seq < self.highest_desired:
            return
        if self._dl is not None and (self._dl.desired_seq, self._dl.digest) == (d.desired_seq, d.digest):
            return
        if d.desired_seq == self.highest_desired and d.digest == self.running_digest:
            return  # retained redelivery of what we already finished
        self.highest_desired = d.desired_seq
        frm = IDLE
        if self._dl is not None:  # a newer desired state supersedes the download (agent.cpp: abandon_download)
            frm = DOWNLOADING if self._dl.meta is not None else CHECKING
            self._abandon()
        if d.digest == self.running_digest:
            self.report(frm, IDLE, EV_DESIRED, UP_TO_DATE, d.desired_seq, d.digest)
            return
        if (d.desired_seq, d.digest) in self.failed_attempts:
            return
        self.report(frm, CHECKING, EV_DESIRED, 0, d.desired_seq, d.digest)
        self._dl = Download(d.desired_seq, d.digest)
        self.client.subscribe(f"fleet/bundles/{d.digest.hex()}/meta", qos=1)

    def _abandon(self) -> None:
        dl, self._dl = self._dl, None
        assert dl is not None
        if dl.meta is None:
            self.client.unsubscribe(f"fleet/bundles/{dl.digest.hex()}/meta")
            return
        for topic in _missing_blocks(dl):
            self.client.unsubscribe(topic)

    def _on_meta(self, payload: bytes) -> None:
        dl = self._dl
        if dl is None or dl.meta is not None or hashlib.sha256(payload).digest() != dl.digest:
            return
        dl.meta = payload
        self.client.unsubscribe(f"fleet/bundles/{dl.digest.hex()}/meta")
        if parse_meta(payload).manifest.security_counter < self.counter:
            self._dl = None
            self.report(CHECKING, FAILED, EV_META, COUNTER_TOO_LOW, dl.desired_seq, dl.digest)
            return
        self.report(CHECKING, DOWNLOADING, EV_META, 0, dl.desired_seq, dl.digest)
        have = {}
        if self.running:
            cur = parse_bundle(self.running)
            have = {c.sha256.hex(): cur.payload(c) for c in cur.components}
        for c in parse_meta(payload).components:
            sha = c.sha256.hex()
            if sha in have:
                dl.copied[sha] = have[sha]
            else:
                dl.blocks[sha] = {}
                self.downloaded.append(sha)
        self._request_missing()
        self._maybe_finish()

    def _request_missing(self) -> None:
        dl = self._dl
        if dl is None or dl.meta is None:
            if dl is not None:
                self.client.subscribe(f"fleet/bundles/{dl.digest.hex()}/meta", qos=1)
            return
        for topic in _missing_blocks(dl):
            self.client.subscribe(topic, qos=1)

    @property
    def stalled(self) -> bool:
        """Blocks have arrived and wait behind hold_blocks: the device is mid-download."""
        with self._lock:
            return bool(self._held_blocks)

    def release_blocks(self) -> None:
        with self._lock:
            self.hold_blocks = False
            held, self._held_blocks = self._held_blocks, []
            for sha, payload in held:
                self._on_block(sha, payload)

    def _on_block(self, sha: str, payload: bytes) -> None:
        if self.hold_blocks:
            self._held_blocks.append((sha, payload))
            return
        dl = self._dl
        if dl is None or sha not in dl.blocks or not payload:
            return
        index, _length, data = decode_block(payload)
        if index not in dl.blocks[sha]:
            dl.blocks[sha][index] = data
            self.client.unsubscribe(f"fleet/blobs/{sha}/b/{index}")
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        dl = self._dl
        assert dl is not None and dl.meta is not None
        meta = parse_meta(dl.meta)
        out = bytearray(meta.header.total_len)
        out[: len(dl.meta)] = dl.meta
        for c in meta.components:
            sha = c.sha256.hex()
            if sha in dl.copied:
                out[c.offset : c.end] = dl.copied[sha]
            elif len(dl.blocks[sha]) == block_count(c.length):
                out[c.offset : c.end] = b"".join(dl.blocks[sha][i] for i in range(block_count(c.length)))
            else:
                return
        new = verify_bundle(bytes(out), self.keys, VerifyPolicy(hardware_class=self.hw)).data
        assert new is not None
        self._dl = None
        self.report(DOWNLOADING, REBOOTING, EV_BLOCK, STAGED, dl.desired_seq, dl.digest)
        # reboot into the trial image
        self.epoch, self.seq = self.epoch + 1, 0
        old = self.running
        self.running = new
        self.report(POWERON, TRIAL, EV_BOOT, 0, dl.desired_seq, dl.digest)
        if dl.digest in self.fails_health_on:
            self.report(TRIAL, REBOOTING, EV_HEALTH, HEALTH_OUTPUT_MISMATCH, dl.desired_seq, dl.digest)
            self.running = old
            self.failed_attempts.add((dl.desired_seq, dl.digest))
            self.epoch, self.seq = self.epoch + 1, 0
            self.report(POWERON, IDLE, EV_BOOT, HEALTH_OUTPUT_MISMATCH, dl.desired_seq, dl.digest)
        else:
            self.counter = max(self.counter, meta.manifest.security_counter)
            self.report(TRIAL, IDLE, EV_HEALTH, CONFIRMED, dl.desired_seq, dl.digest)
            self.installs.append(dl.digest)
        self._send(topics.presence(self.id), self._presence(1), retain=True)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
