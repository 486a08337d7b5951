"""Byte layouts of docs/device-protocol.md, checked field by field against offsets written out by hand."""

from __future__ import annotations

import struct
import zlib

import pytest

from tinyfleet.protocol.records import (
    ChannelStats,
    Presence,
    ProtocolError,
    StateReport,
    Telemetry,
    decode_block,
    decode_desired,
    decode_presence,
    decode_report,
    decode_telemetry,
    encode_block,
    encode_desired,
)

D1, D2 = bytes(range(32)), bytes(range(32, 64))


def test_desired_layout() -> None:
    b = encode_desired(7, D1, 123456, rollback=True, rollback_digest=D2)
    assert len(b) == 84 and b[:4] == b"TFDS" and b[4] == 1 and b[5] == 1 and b[6:8] == b"\0\0"
    assert struct.unpack_from("<I", b, 8)[0] == 7 and b[12:44] == D1
    assert struct.unpack_from("<I", b, 44)[0] == 123456 and b[48] == 12 and b[49:52] == bytes(3) and b[52:84] == D2
    d = decode_desired(b)
    assert (d.desired_seq, d.digest, d.total_len, d.rollback, d.rollback_digest) == (7, D1, 123456, True, D2)
    assert encode_desired(1, D1, 5)[52:84] == bytes(32)


def test_blocks_cover_the_component_exactly() -> None:
    comp = bytes(i % 251 for i in range(4096 * 2 + 5))
    blocks = [encode_block(i, comp) for i in range(3)]
    assert [len(b) - 20 for b in blocks] == [4096, 4096, 5]
    b = blocks[2]
    assert (
        b[:4] == b"TFBK"
        and b[4] == 1
        and b[5] == 12
        and struct.unpack_from("<III", b, 8) == (2, len(comp), zlib.crc32(comp[8192:]))
    )
    assert b"".join(decode_block(x)[2] for x in blocks) == comp
    bad = bytearray(b)
    bad[-1] ^= 1
    with pytest.raises(ProtocolError, match="CRC mismatch"):
        decode_block(bytes(bad))
    with pytest.raises(ValueError):
        encode_block(3, comp)


def test_state_report_round_trip_and_offsets() -> None:
    r = StateReport(6, 1, 9, 3, 17, 99, 5, D1, D2, 0, 0, 1_700_000_000)
    b = r.encode()
    assert len(b) == 104 and b[5:8] == bytes([6, 1, 9])
    assert struct.unpack_from("<IIHHI", b, 8) == (3, 17, 99, 0, 5)
    assert b[24:56] == D1 and b[56:88] == D2 and struct.unpack_from("<q", b, 96)[0] == 1_700_000_000
    assert decode_report(b) == r and r.order == (3 << 32) | 17 and r.reason_name == "Confirmed"
    with pytest.raises(ProtocolError, match="expected exactly 104"):
        decode_report(b[:-1])
    with pytest.raises(ProtocolError, match="bad magic"):
        decode_report(b"XXXX" + b[4:])
    with pytest.raises(ProtocolError, match="unknown state code 9"):
        decode_report(b[:6] + b"\x09" + b[7:])


def test_telemetry_layout() -> None:
    t = Telemetry(2, 4, 1000, 60, 6000, 60, 3, 1, 900, 1500, -256, 512, 128, D1, tuple(range(16)),
                  (ChannelStats(-300, 70000), ChannelStats(5, 9)))  # fmt: skip
    b = t.encode()
    assert len(b) == 156 + 24 and b[5] == 2 and b[6] == 16
    assert struct.unpack_from("<IIqIIIIIII", b, 8) == (2, 4, 1000, 60, 6000, 60, 3, 1, 900, 1500)
    assert struct.unpack_from("<hhh", b, 52) == (-256, 512, 128) and b[60:92] == D1
    assert struct.unpack_from("<16I", b, 92) == tuple(range(16))
    assert struct.unpack_from("<iQ", b, 156) == (-300, 70000)
    assert decode_telemetry(b) == t
    with pytest.raises(ProtocolError, match="expected 180 for 2 channels"):
        decode_telemetry(b + b"\0")


def test_presence_layout() -> None:
    p = Presence(1, 2, 9, 44, D1, "stm32l4", 1 << 20, 3, 1234)
    b = p.encode()
    assert len(b) == 96 and b[5:8] == bytes([1, 2, 0]) and struct.unpack_from("<II", b, 8) == (9, 44)
    assert b[48:80] == b"stm32l4".ljust(32, b"\0") and struct.unpack_from("<IIq", b, 80) == (1 << 20, 3, 1234)
    assert decode_presence(b) == p
    with pytest.raises(ProtocolError, match="status 7"):
        decode_presence(b[:5] + b"\x07" + b[6:])
