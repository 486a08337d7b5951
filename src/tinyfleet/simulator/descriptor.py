"""Firmware simulation descriptor: how a firmware image behaves when fleet-sim boots it (pure).

The firmware component is opaque to the bundle format, so fleet-sim reads its behaviour from a record the
firmware carries at offset 0 of its payload (docs/simulator.md, "Firmware simulation descriptor"), 32 bytes:

    0  4  magic "TFSD"
    4  1  version 1
    5  1  flags: bit 0 CRASHES_AT_BOOT (the image resets before its agent runs), bits 1..7 zero
    6  2  reserved, zero
    8  4  extra_latency_us   added to every inference's measured latency
    12 4  ram_bytes          firmware RAM on top of the model's arena (the arena high-water the agent sees)
    16 4  boot_ms            time from reset to the agent's boot event
    20 12 reserved, zero

Because the descriptor is inside the signed firmware payload, a bad firmware is simulated honestly: the device
installs the real signed bytes and only then finds out, on its trial boot, how that image behaves.
An image without the magic at offset 0 behaves as `Descriptor()` (boots, no extra latency or RAM).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

MAGIC = b"TFSD"
VERSION = 1
SIZE = 32
CRASHES_AT_BOOT = 0x01
_FMT = "<4sBBHIII12s"


class DescriptorError(ValueError):
    """A firmware carries the descriptor magic but the record breaks the format."""


@dataclass(frozen=True)
class Descriptor:
    crashes_at_boot: bool = False
    extra_latency_us: int = 0
    ram_bytes: int = 0
    boot_ms: int = 200

    def encode(self) -> bytes:
        for name in ("extra_latency_us", "ram_bytes", "boot_ms"):
            v = getattr(self, name)
            if not 0 <= v < 2**32:
                raise DescriptorError(f"descriptor {name} {v} is outside 0..2^32-1")
        flags = CRASHES_AT_BOOT if self.crashes_at_boot else 0
        return struct.pack(_FMT, MAGIC, VERSION, flags, 0, self.extra_latency_us, self.ram_bytes, self.boot_ms,
                           bytes(12))  # fmt: skip


def decode(firmware: bytes) -> Descriptor:
    """The descriptor of a firmware payload (the default behaviour when it carries none)."""
    if firmware[:4] != MAGIC:
        return Descriptor()
    if len(firmware) < SIZE:
        raise DescriptorError(f"firmware descriptor truncated: {len(firmware)} of {SIZE} bytes")
    magic, version, flags, reserved, latency, ram, boot_ms, tail = struct.unpack_from(_FMT, firmware)
    if version != VERSION:
        raise DescriptorError(f"firmware descriptor version {version} is not supported (expected {VERSION})")
    if flags & ~CRASHES_AT_BOOT or reserved or any(tail):
        raise DescriptorError("firmware descriptor has non-zero reserved bits")
    return Descriptor(bool(flags & CRASHES_AT_BOOT), latency, ram, boot_ms)


def firmware_image(version: str, desc: Descriptor, size: int = 16384) -> bytes:
    """A stand-in firmware image: the descriptor, a version banner, then deterministic filler."""
    head = desc.encode() + f"tinyfleet simulated firmware {version}\n".encode()
    if size < len(head):
        raise DescriptorError(f"firmware size {size} is smaller than its {len(head)}-byte header")
    return head + hashlib.shake_256(version.encode()).digest(size - len(head))
