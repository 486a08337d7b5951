"""Binary records of docs/device-protocol.md: TFDS, TFBK (server -> device), TFSR, TFTM, TFPR (device -> server).

Pure: bytes in, typed records out, and back. Decoders check magic, version, length and reserved bytes
first and raise `ProtocolError` with a one-line message; encoders for the device-side records exist so
tests and the benchmark can script devices with nothing but a plain MQTT client.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from tinyfleet.protocol.codes import REASON_NAMES, STATE_NAMES, Reason

BLOCK_SIZE_LOG2 = 12
BLOCK_SIZE = 1 << BLOCK_SIZE_LOG2
HIST_BINS = 16
NO_TEMP = -32768
ZERO_DIGEST = bytes(32)
BLOCK_HEADER_SIZE = 20
# The largest payloads on the wire: a bundle meta (bundle bytes [0, payload_offset), at most 4864: the agent's
# TINYFLEET_PREFIX_BUFFER_SIZE) and a full block record. Every device record is far smaller.
MAX_META_SIZE = 4864
MAX_PAYLOAD_SIZE = max(MAX_META_SIZE, BLOCK_HEADER_SIZE + BLOCK_SIZE)
# The largest MQTT packet a client must send or receive: the largest payload, the longest topic (a block topic,
# 89 bytes with a 10-digit index), fixed header, packet id and MQTT v5 properties, with room to spare.
MAX_PACKET_SIZE = 5120

# A device that reports one of these for an update has reverted it: the install failed.
HEALTH_FAILURES = frozenset(
    {
        Reason.HealthOutputMismatch,
        Reason.HealthLatency,
        Reason.HealthRam,
        Reason.HealthBrokerTimeout,
        Reason.HealthInference,
        Reason.TrialExhausted,
        Reason.HealthFeatureExtractor,
    }
)
REPORTED_PRESENCE = {0: "offline", 1: "online", 2: "rebooting"}  # TFPR status
IMAGE_STATES = {1: "confirmed", 2: "trial"}  # TFPR image_state


class ProtocolError(ValueError):
    """A device sent a record that breaks docs/device-protocol.md."""


def _check(data: bytes, magic: bytes, what: str, size: int | None = None, min_size: int = 5) -> int:
    if len(data) < min_size:
        raise ProtocolError(f"{what}: {len(data)} bytes is too short")
    if data[:4] != magic:
        raise ProtocolError(f"{what}: bad magic {data[:4]!r}, expected {magic!r}")
    if data[4] != 1:
        raise ProtocolError(f"{what}: unsupported version {data[4]}")
    if size is not None and len(data) != size:
        raise ProtocolError(f"{what}: {len(data)} bytes, expected exactly {size}")
    return len(data)


# --- server -> device -----------------------------------------------------------------------------------


def encode_desired(
    desired_seq: int, digest: bytes, total_len: int, *, rollback: bool = False, rollback_digest: bytes | None = None
) -> bytes:
    if not 1 <= desired_seq <= 0xFFFFFFFF:
        raise ValueError(f"desired_seq {desired_seq} outside 1..2^32-1")
    rb = rollback_digest or ZERO_DIGEST
    if len(digest) != 32 or len(rb) != 32:
        raise ValueError("digests are 32 bytes")
    return (
        b"TFDS"
        + struct.pack("<BBHI", 1, 1 if rollback else 0, 0, desired_seq)
        + digest
        + struct.pack("<IB3x", total_len, BLOCK_SIZE_LOG2)
        + rb
    )


@dataclass(frozen=True)
class Desired:
    desired_seq: int
    digest: bytes
    total_len: int
    rollback: bool
    rollback_digest: bytes


def decode_desired(data: bytes) -> Desired:
    _check(data, b"TFDS", "desired state", 84)
    flags, reserved, seq = struct.unpack_from("<BHI", data, 5)
    total_len, log2 = struct.unpack_from("<IB", data, 44)
    if flags & 0xFE or reserved or data[49:52] != bytes(3) or log2 != BLOCK_SIZE_LOG2 or seq == 0:
        raise ProtocolError("desired state: reserved bits, block size or desired_seq invalid")
    return Desired(seq, bytes(data[12:44]), total_len, bool(flags & 1), bytes(data[52:84]))


def block_count(length: int) -> int:
    return (length + BLOCK_SIZE - 1) // BLOCK_SIZE


def encode_block(index: int, component: bytes) -> bytes:
    chunk = component[index * BLOCK_SIZE : (index + 1) * BLOCK_SIZE]
    if not chunk:
        raise ValueError(f"block {index} is past the end of a {len(component)}-byte component")
    return b"TFBK" + struct.pack("<BBHIII", 1, BLOCK_SIZE_LOG2, 0, index, len(component), zlib.crc32(chunk)) + chunk


def decode_block(data: bytes) -> tuple[int, int, bytes]:
    """-> (index, component_len, data), CRC checked."""
    _check(data, b"TFBK", "block", min_size=BLOCK_HEADER_SIZE + 1)
    log2, reserved, index, comp_len, crc = struct.unpack_from("<BHIII", data, 5)
    chunk = bytes(data[BLOCK_HEADER_SIZE:])
    if log2 != BLOCK_SIZE_LOG2 or reserved:
        raise ProtocolError("block: bad block size or reserved bytes")
    if zlib.crc32(chunk) != crc:
        raise ProtocolError(f"block {index}: CRC mismatch")
    return index, comp_len, chunk


# --- device -> server -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StateReport:
    from_state: int
    to_state: int
    event: int
    epoch: int
    seq: int
    reason: int
    desired_seq: int
    target_digest: bytes
    running_digest: bytes
    detail0: int
    detail1: int
    device_time: int

    @property
    def order(self) -> int:
        """`(epoch << 32) | seq`: strictly increases over the device's life."""
        return (self.epoch << 32) | self.seq

    @property
    def reason_name(self) -> str:
        return REASON_NAMES.get(self.reason, f"Reason{self.reason}")

    @property
    def to_state_name(self) -> str:
        return STATE_NAMES.get(self.to_state, f"State{self.to_state}")

    def encode(self) -> bytes:
        return (
            b"TFSR"
            + struct.pack("<BBBBIIHHI", 1, self.from_state, self.to_state, self.event, self.epoch, self.seq,
                          self.reason, 0, self.desired_seq)
            + self.target_digest
            + self.running_digest
            + struct.pack("<IIq", self.detail0, self.detail1, self.device_time)
        )  # fmt: skip


def decode_report(data: bytes) -> StateReport:
    _check(data, b"TFSR", "state report", 104)
    fs, ts, ev, epoch, seq, reason, reserved, dseq = struct.unpack_from("<BBBIIHHI", data, 5)
    if reserved:
        raise ProtocolError("state report: reserved bytes are not zero")
    if fs not in STATE_NAMES or ts not in STATE_NAMES:
        raise ProtocolError(f"state report: unknown state code {fs if fs not in STATE_NAMES else ts}")
    d0, d1, t = struct.unpack_from("<IIq", data, 88)
    return StateReport(fs, ts, ev, epoch, seq, reason, dseq, bytes(data[24:56]), bytes(data[56:88]), d0, d1, t)


@dataclass(frozen=True)
class ChannelStats:
    mean_q8: int
    var_q8: int


@dataclass(frozen=True)
class Telemetry:
    epoch: int
    window_seq: int
    window_start: int
    window_len_s: int
    sample_count: int
    inference_count: int
    alarm_count: int
    uncertain_count: int
    latency_p99_us: int
    latency_max_us: int
    temp_min_q8: int
    temp_max_q8: int
    temp_mean_q8: int
    running_digest: bytes
    confidence_hist: tuple[int, ...]
    channels: tuple[ChannelStats, ...]

    @property
    def order(self) -> int:
        return (self.epoch << 32) | self.window_seq

    def encode(self) -> bytes:
        head = b"TFTM" + struct.pack(
            "<BBBBIIqIIIIIIIhhhH", 1, len(self.channels), HIST_BINS, 0, self.epoch, self.window_seq,
            self.window_start, self.window_len_s, self.sample_count, self.inference_count, self.alarm_count,
            self.uncertain_count, self.latency_p99_us, self.latency_max_us, self.temp_min_q8, self.temp_max_q8,
            self.temp_mean_q8, 0,
        )  # fmt: skip
        return (
            head
            + self.running_digest
            + struct.pack(f"<{HIST_BINS}I", *self.confidence_hist)
            + b"".join(struct.pack("<iQ", c.mean_q8, c.var_q8) for c in self.channels)
        )


def decode_telemetry(data: bytes) -> Telemetry:
    _check(data, b"TFTM", "telemetry", min_size=156)
    n, bins, reserved = data[5], data[6], data[7]
    if n > 16 or bins != HIST_BINS or reserved:
        raise ProtocolError(f"telemetry: channel_count {n} / hist_bins {bins} / reserved invalid")
    if len(data) != 156 + 12 * n:
        raise ProtocolError(f"telemetry: {len(data)} bytes, expected {156 + 12 * n} for {n} channels")
    f = struct.unpack_from("<IIqIIIIIIIhhhH", data, 8)
    if f[13]:
        raise ProtocolError("telemetry: reserved bytes are not zero")
    hist = struct.unpack_from(f"<{HIST_BINS}I", data, 92)
    chans = tuple(ChannelStats(*struct.unpack_from("<iQ", data, 156 + 12 * i)) for i in range(n))
    return Telemetry(*f[:13], bytes(data[60:92]), tuple(hist), chans)


@dataclass(frozen=True)
class Presence:
    status: int
    image_state: int
    epoch: int
    last_seq: int
    running_digest: bytes
    hardware_class: str
    bank_size: int
    security_counter: int
    device_time: int

    def encode(self) -> bytes:
        return (
            b"TFPR"
            + struct.pack("<BBBBII", 1, self.status, self.image_state, 0, self.epoch, self.last_seq)
            + self.running_digest
            + self.hardware_class.encode().ljust(32, b"\0")
            + struct.pack("<IIq", self.bank_size, self.security_counter, self.device_time)
        )


def decode_presence(data: bytes) -> Presence:
    _check(data, b"TFPR", "presence", 96)
    status, image_state, reserved, epoch, last_seq = struct.unpack_from("<BBBII", data, 5)
    if status not in REPORTED_PRESENCE or reserved:
        raise ProtocolError(f"presence: status {status} or reserved byte invalid")
    hw = data[48:80].rstrip(b"\0")
    if b"\0" in hw or not all(0x20 <= c < 0x7F for c in hw):
        raise ProtocolError("presence: hardware_class is not NUL-padded ASCII")
    bank, counter, t = struct.unpack_from("<IIq", data, 80)
    return Presence(status, image_state, epoch, last_seq, bytes(data[16:48]), hw.decode(), bank, counter, t)
