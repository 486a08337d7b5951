"""The emulated platform behind one simulated device's agent: flash, battery, clocks and inference.

`tinyfleet._agent.Device` calls these methods through its Flash, Power, Clock and Inference ports. The model
the device runs is read from its own flash (the booted bank's model component), run through the shared TFLM
interpreter for that model, and timed by the hardware profile's latency estimate plus the booted firmware's
simulation descriptor: host wall time says nothing about an MCU, and would make outcomes depend on load.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinyfleet.bundles.components import ComponentType
from tinyfleet.bundles.errors import BundleError
from tinyfleet.bundles.format import MAGIC, bundle_digest, parse_meta
from tinyfleet.simulator import descriptor
from tinyfleet.simulator.battery import Battery
from tinyfleet.simulator.clock import SimClock
from tinyfleet.simulator.descriptor import Descriptor
from tinyfleet.simulator.flash import BANK0, BANK1, SparseNorFlash
from tinyfleet.simulator.inference import InterpreterPool, ModelRunner

PREFIX = 4864  # the largest meta (docs/device-protocol.md)


@dataclass(frozen=True)
class BootedImage:
    digest: bytes
    bundle_id: str
    bank: int
    runner: ModelRunner
    firmware: Descriptor


class SimPlatform(SparseNorFlash):
    def __init__(self, flash_args: tuple, clock: SimClock, battery: Battery, pool: InterpreterPool,
                 latency_us: int) -> None:  # fmt: skip
        super().__init__(*flash_args)
        self.clock = clock
        self.battery = battery
        self.pool = pool
        self.latency_us = latency_us
        self.boot_ms = 0
        self.image: BootedImage | None = None
        self.inferences = 0

    # --- Power and Clock ports ----------------------------------------------------------------------------

    def battery_pct(self) -> int:
        return self.battery.pct()

    def unix_seconds(self) -> int:
        return self.clock.unix()

    def monotonic_ms(self) -> int:
        return self.clock.ms - self.boot_ms

    def flash_write(self, area: int, offset: int, data: bytes) -> bool:
        self.battery.spend(self.battery.flash_op_pct)
        return super().flash_write(area, offset, data)

    # --- Inference port -----------------------------------------------------------------------------------

    def infer(self, data: bytes, output_len: int) -> tuple[bytes, int, int]:
        if self.image is None:
            raise RuntimeError("inference before the platform found its booted image")
        out = self.image.runner.run(data)
        self.inferences += 1
        self.battery.spend(self.battery.inference_pct)
        fw = self.image.firmware
        return out, self.latency_us + fw.extra_latency_us, self.image.runner.arena_bytes + fw.ram_bytes

    # --- what the booted bank holds -----------------------------------------------------------------------

    def find_image(self, digest: bytes) -> BootedImage:
        """The bank whose meta hashes to `digest`, its model (as a shared runner) and firmware descriptor."""
        for bank in (BANK0, BANK1):
            prefix = self.flash_read(bank, 0, PREFIX)
            try:  # an erased, half-written or other bank is not this one
                if prefix[:8] != MAGIC or bundle_digest(prefix) != digest:
                    continue
            except BundleError:
                continue
            meta = parse_meta(prefix)
            model = meta.component(ComponentType.MODEL)
            fw = meta.component(ComponentType.FIRMWARE)
            model_bytes = self.flash_read(bank, model.offset, model.length)
            fw_head = self.flash_read(bank, fw.offset, min(fw.length, descriptor.SIZE))
            runner = self.pool.get(model_bytes)
            return BootedImage(digest, meta.manifest.bundle_id, bank, runner, descriptor.decode(fw_head))
        raise RuntimeError(f"no bank holds the running bundle {digest.hex()[:16]}")

