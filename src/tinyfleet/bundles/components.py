"""Component types and the fixed-layout payloads the agent reads: thresholds, calibration, health vectors.

Layouts are in docs/bundle-format.md ("Component payloads"). Firmware and model payloads are opaque here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from .errors import ComponentFormatError


class ComponentType(IntEnum):
    FIRMWARE = 1
    MODEL = 2
    THRESHOLDS = 3
    CALIBRATION = 4
    HEALTH_VECTORS = 5

    @property
    def label(self) -> str:
        return self.name.lower()


REQUIRED_COMPONENTS = tuple(ComponentType)

_TH_MAGIC, _CA_MAGIC, _HV_MAGIC = b"TFTH", b"TFCA", b"TFHV"


def _header(data: bytes, magic: bytes, what: str, size: int) -> tuple[int, int]:
    if len(data) < size:
        raise ComponentFormatError(f"{what} payload is {len(data)} bytes, shorter than its {size}-byte header")
    if data[:4] != magic:
        raise ComponentFormatError(f"{what} payload does not start with {magic.decode()}")
    version, count = struct.unpack_from("<HH", data, 4)
    if version != 1:
        raise ComponentFormatError(f"{what} payload version {version} is not supported (expected 1)")
    return version, count


def _int_field(obj: dict[str, Any], key: str, lo: int, hi: int, what: str) -> int:
    v = obj.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ComponentFormatError(f"{what}: {key!r} must be an integer in {lo}..{hi}, got {v!r}")
    return v


@dataclass(frozen=True)
class ClassThreshold:
    label: str
    min_score: int
    alarm: bool


@dataclass(frozen=True)
class Thresholds:
    classes: tuple[ClassThreshold, ...]

    def encode(self) -> bytes:
        if not 1 <= len(self.classes) <= 64:
            raise ComponentFormatError(f"thresholds need 1..64 classes, got {len(self.classes)}")
        out = bytearray(_TH_MAGIC + struct.pack("<HH", 1, len(self.classes)))
        for c in self.classes:
            label = c.label.encode("ascii") if c.label.isascii() and c.label.isprintable() else b""
            if not 1 <= len(label) <= 16:
                raise ComponentFormatError(f"threshold label {c.label!r} must be 1..16 ASCII characters")
            if not -128 <= c.min_score <= 127:
                raise ComponentFormatError(f"threshold min_score {c.min_score} for {c.label!r} is outside -128..127")
            out += struct.pack("<hBB16s", c.min_score, 1 if c.alarm else 0, 0, label)
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> Thresholds:
        _, count = _header(data, _TH_MAGIC, "thresholds", 8)
        if not 1 <= count <= 64 or len(data) != 8 + 20 * count:
            raise ComponentFormatError(f"thresholds payload: {count} classes do not match its {len(data)} bytes")
        classes = []
        for i in range(count):
            score, flags, _rsv, label = struct.unpack_from("<hBB16s", data, 8 + 20 * i)
            classes.append(ClassThreshold(label.rstrip(b"\x00").decode("ascii", "replace"), score, bool(flags & 1)))
        return cls(tuple(classes))

    @classmethod
    def from_json(cls, obj: Any) -> Thresholds:
        if not isinstance(obj, dict) or not isinstance(obj.get("classes"), list):
            raise ComponentFormatError('thresholds JSON must be an object with a "classes" list')
        classes = []
        for i, c in enumerate(obj["classes"]):
            what = f"thresholds class {i}"
            if not isinstance(c, dict) or not isinstance(c.get("label"), str):
                raise ComponentFormatError(f'{what} must be an object with a string "label"')
            classes.append(
                ClassThreshold(c["label"], _int_field(c, "min_score", -128, 127, what), bool(c.get("alarm", False)))
            )
        t = cls(tuple(classes))
        t.encode()  # validates labels and counts
        return t

    def to_json(self) -> dict[str, Any]:
        return {"classes": [{"label": c.label, "min_score": c.min_score, "alarm": c.alarm} for c in self.classes]}


@dataclass(frozen=True)
class ChannelCalibration:
    offset: int
    gain_q16: int
    baseline_mean_q8: int
    baseline_std_q8: int

    def apply(self, raw: int) -> int:
        """Calibrated int16 sample, exactly as the device computes it."""
        v = ((raw - self.offset) * self.gain_q16) >> 16
        return max(-32768, min(32767, v))


@dataclass(frozen=True)
class Calibration:
    sample_rate_hz: int
    channels: tuple[ChannelCalibration, ...]

    def encode(self) -> bytes:
        if not 1 <= len(self.channels) <= 16:
            raise ComponentFormatError(f"calibration needs 1..16 channels, got {len(self.channels)}")
        if not 0 <= self.sample_rate_hz <= 0xFFFFFFFF:
            raise ComponentFormatError(f"sample_rate_hz {self.sample_rate_hz} does not fit in 32 bits")
        out = bytearray(_CA_MAGIC + struct.pack("<HHI", 1, len(self.channels), self.sample_rate_hz))
        for i, c in enumerate(self.channels):
            if c.gain_q16 <= 0:
                raise ComponentFormatError(f"calibration channel {i}: gain_q16 must be > 0")
            try:
                out += struct.pack("<iiiI", c.offset, c.gain_q16, c.baseline_mean_q8, c.baseline_std_q8)
            except struct.error as e:
                raise ComponentFormatError(f"calibration channel {i}: value out of 32-bit range") from e
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> Calibration:
        _, count = _header(data, _CA_MAGIC, "calibration", 12)
        if not 1 <= count <= 16 or len(data) != 12 + 16 * count:
            raise ComponentFormatError(f"calibration payload: {count} channels do not match its {len(data)} bytes")
        (rate,) = struct.unpack_from("<I", data, 8)
        chans = tuple(ChannelCalibration(*struct.unpack_from("<iiiI", data, 12 + 16 * i)) for i in range(count))
        return cls(rate, chans)

    @classmethod
    def from_json(cls, obj: Any) -> Calibration:
        if not isinstance(obj, dict) or not isinstance(obj.get("channels"), list):
            raise ComponentFormatError('calibration JSON must be an object with a "channels" list')
        rate = _int_field(obj, "sample_rate_hz", 1, 0xFFFFFFFF, "calibration")
        chans = []
        for i, c in enumerate(obj["channels"]):
            what = f"calibration channel {i}"
            if not isinstance(c, dict):
                raise ComponentFormatError(f"{what} must be an object")
            chans.append(
                ChannelCalibration(
                    _int_field(c, "offset", -(2**31), 2**31 - 1, what),
                    _int_field(c, "gain_q16", 1, 2**31 - 1, what),
                    _int_field(c, "baseline_mean_q8", -(2**31), 2**31 - 1, what),
                    _int_field(c, "baseline_std_q8", 0, 2**32 - 1, what),
                )
            )
        cal = cls(rate, tuple(chans))
        cal.encode()
        return cal

    def to_json(self) -> dict[str, Any]:
        return {
            "sample_rate_hz": self.sample_rate_hz,
            "channels": [
                {
                    "offset": c.offset,
                    "gain_q16": c.gain_q16,
                    "baseline_mean_q8": c.baseline_mean_q8,
                    "baseline_std_q8": c.baseline_std_q8,
                }
                for c in self.channels
            ],
        }


@dataclass(frozen=True)
class HealthVectors:
    input_bytes: int
    output_bytes: int
    vectors: tuple[tuple[bytes, bytes], ...]

    def encode(self) -> bytes:
        if not 1 <= len(self.vectors) <= 64:
            raise ComponentFormatError(f"health vectors need 1..64 vectors, got {len(self.vectors)}")
        if self.input_bytes < 1 or self.output_bytes < 1:
            raise ComponentFormatError("health vector input and output sizes must be >= 1 byte")
        out = bytearray(_HV_MAGIC + struct.pack("<HHII", 1, len(self.vectors), self.input_bytes, self.output_bytes))
        for i, (x, y) in enumerate(self.vectors):
            if len(x) != self.input_bytes or len(y) != self.output_bytes:
                raise ComponentFormatError(
                    f"health vector {i} is {len(x)}+{len(y)} bytes, expected {self.input_bytes}+{self.output_bytes}"
                )
            out += x + y
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> HealthVectors:
        _, count = _header(data, _HV_MAGIC, "health vectors", 16)
        nin, nout = struct.unpack_from("<II", data, 8)
        if not 1 <= count <= 64 or nin < 1 or nout < 1 or len(data) != 16 + count * (nin + nout):
            raise ComponentFormatError(
                f"health vectors payload: {count} x ({nin}+{nout}) bytes does not match its {len(data)} bytes"
            )
        step = nin + nout
        vecs = tuple(
            (bytes(data[16 + i * step : 16 + i * step + nin]), bytes(data[16 + i * step + nin : 16 + (i + 1) * step]))
            for i in range(count)
        )
        return cls(nin, nout, vecs)
