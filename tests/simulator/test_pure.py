"""The simulator's pure parts: descriptor, flash with power cuts, sensors, battery, fleet plan, network faults."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from tinyfleet import _agent
from tinyfleet.simulator import descriptor, sensors, signals
from tinyfleet.simulator.battery import Battery
from tinyfleet.simulator.descriptor import Descriptor, DescriptorError
from tinyfleet.simulator.flash import BANK1, FlashLayout, PowerCut, SparseNorFlash
from tinyfleet.simulator.fleet import (
    FleetSpec,
    SpecError,
    apportion,
    parse_broker_node,
    parse_mix,
    parse_tags,
    plan_devices,
)
from tinyfleet.simulator.mqtt_link import Credentials
from tinyfleet.simulator.netfaults import FLAKY, Fate, NetFaults, NetProfile


def test_descriptor_round_trip_and_default() -> None:
    d = Descriptor(crashes_at_boot=True, extra_latency_us=90_000, ram_bytes=70_000, boot_ms=350)
    img = descriptor.firmware_image("9.9.9", d, size=4096)
    assert len(img) == 4096 and img[:4] == b"TFSD"
    assert descriptor.decode(img) == d
    assert descriptor.decode(b"\x7fELF" + bytes(100)) == Descriptor()  # no descriptor: boots normally
    assert descriptor.firmware_image("1", Descriptor()) == descriptor.firmware_image("1", Descriptor())


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[:20], "truncated"),
        (lambda b: b[:4] + b"\x02" + b[5:], "version 2"),
        (lambda b: b[:5] + b"\x80" + b[6:], "reserved"),
        (lambda b: b[:31] + b"\x01" + b[32:], "reserved"),
    ],
)
def test_descriptor_refuses_malformed_records(mutate, message: str) -> None:
    img = descriptor.firmware_image("1", Descriptor())
    with pytest.raises(DescriptorError, match=message):
        descriptor.decode(mutate(img))
    with pytest.raises(DescriptorError, match="extra_latency_us"):
        Descriptor(extra_latency_us=-1).encode()


def test_flash_keeps_nor_rules_and_is_sparse() -> None:
    f = SparseNorFlash(FlashLayout(sector=4096, bank_sectors=8, write_align=8), np.random.default_rng(1))
    assert f.flash_read(BANK1, 100, 16) == b"\xff" * 16 and f.bytes_used() == 0
    assert f.flash_write(BANK1, 4088, b"A" * 16)  # spans two sectors
    assert f.flash_read(BANK1, 4088, 16) == b"A" * 16 and f.bytes_used() == 2 * 4096
    assert not f.flash_write(BANK1, 4088, b"B" * 8)  # not erased
    assert not f.flash_write(BANK1, 3, b"B" * 8)  # unaligned
    assert not f.flash_erase(BANK1, 100, 4096)  # not a sector boundary
    assert f.flash_erase(BANK1, 0, 8192) and f.bytes_used() == 0


def test_flashes_holding_the_same_bytes_share_their_sectors() -> None:
    image = hashlib.shake_256(b"bundle").digest(10256)  # two whole sectors and part of a third
    layout = FlashLayout(sector=4096, bank_sectors=8, write_align=8)
    sectors0, _ = _agent.NorFlash.pooled()
    flashes = [SparseNorFlash(layout, np.random.default_rng(i)) for i in range(50)]
    for f in flashes:
        assert f.flash_write(BANK1, 0, image)
    assert _agent.NorFlash.pooled()[0] == sectors0 + 3  # fifty flashes, the three sectors held once
    assert flashes[0].bytes_used() == 3 * 4096  # what each flash holds, shared or not
    assert flashes[1].flash_write(BANK1, 10256, b"Z" * 8)  # one flash's sector changes: it gets its own copy
    assert _agent.NorFlash.pooled()[0] == sectors0 + 4
    assert flashes[0].flash_read(BANK1, 10256, 8) == b"\xff" * 8 and flashes[1].flash_read(BANK1, 10256, 8) == b"Z" * 8
    del flashes, f
    assert _agent.NorFlash.pooled()[0] == sectors0  # a sector leaves the pool with its last holder


def test_power_cut_tears_the_armed_operation_only() -> None:
    f = SparseNorFlash(FlashLayout(sector=4096, bank_sectors=8), np.random.default_rng(5))
    f.arm_cut(2)
    assert f.flash_write(BANK1, 0, b"A" * 64)
    with pytest.raises(PowerCut):
        f.flash_write(BANK1, 64, b"B" * 4096)
    got = f.flash_read(BANK1, 64, 4096)
    kept = len(got) - len(got.lstrip(b"B"))
    half_programmed = bytes([0xFF ^ ((0xFF ^ ord("B")) & 0x0F)])  # the NOR model's torn write (device/ports/nor)
    assert got == b"B" * kept + half_programmed + b"\xff" * (4095 - kept) and kept < 4096
    assert f.cuts == 1 and not f.cut_armed
    assert f.flash_write(BANK1, 8192, b"C" * 8)  # after the cut: a normal flash again
    with pytest.raises(ValueError, match="at least one"):
        f.arm_cut(0)


def test_sensor_drifts_with_age_and_temperature_and_is_seeded() -> None:
    env = signals.Environment("ambient", "low", "horizontal")
    p = sensors.SensorProfile(env=env, offset_counts=(12, -30, 45), temp_cycle_amplitude_c=0.0)
    a, _ = sensors.read_window(np.random.default_rng(3), p, 0.0, 0.0)
    b, _ = sensors.read_window(np.random.default_rng(3), p, 0.0, 0.0)
    assert a.dtype == np.int16 and a.shape == (256, 3) and (a == b).all()
    # Same machine, same noise (same seed), two years older: offsets moved by 80 counts ...
    c, _ = sensors.read_window(np.random.default_rng(3), sensors.aged(p, (40.0, -40.0, 0.0), 0.0), 0.0, 2.0)
    shift = c.astype(float).mean(axis=0) - a.astype(float).mean(axis=0)
    assert shift == pytest.approx([80, -80, 0], abs=1)
    # ... and a 10 % gain drift scales gravity's 1024 counts on the vertical axis.
    g, _ = sensors.read_window(np.random.default_rng(3), sensors.aged(p, (0.0, 0.0, 0.0), 0.05), 0.0, 2.0)
    assert g.astype(float).mean(axis=0)[1] - a.astype(float).mean(axis=0)[1] == pytest.approx(102.4, abs=3)
    cyc = sensors.SensorProfile(env=env, offset_counts=(12, -30, 45), temp_cycle_amplitude_c=8.0)
    temps = [sensors.temperature_c(cyc, t) for t in np.linspace(0, 86400, 25)]
    assert min(temps) == pytest.approx(17.0, abs=0.2) and max(temps) == pytest.approx(33.0, abs=0.2)


def test_battery_drains_and_charges() -> None:
    b = Battery(level=50, drain_pct_per_h=1.0, charge_pct_per_h=11.0, cycle_s=7200, charge_fraction=0.5)
    b.advance(0, 3600)  # charging half of the cycle
    assert b.pct() == 60
    b.advance(4000, 3600)
    assert b.pct() == 59
    b.spend(100)
    assert b.pct() == 0


@pytest.mark.parametrize(("text", "node"), [
    ("broker-1.example.net:8883", ("broker-1.example.net", 8883)),
    ("127.0.0.1:1", ("127.0.0.1", 1)),
    ("[2001:db8::7]:65535", ("2001:db8::7", 65535)),
])  # fmt: skip
def test_a_broker_node_is_host_and_port(text: str, node: tuple[str, int]) -> None:
    assert parse_broker_node(text) == node


@pytest.mark.parametrize("text", ["broker-1", ":1883", "[]:1883", "bro ker:1883", "broker\n:1883", "b/x:1883",
                                  "broker:", "broker:0", "broker:65536", "broker:18 83", "broker:١٢",
                                  "broker:-1", "broker:1883\n", "x" * 300 + ":abc"])  # fmt: skip
def test_a_broker_node_that_is_not_host_and_port_is_refused_by_name(text: str) -> None:
    with pytest.raises(SpecError, match="broker node .* must look like host:port|the port must be a number"):
        parse_broker_node(text)


def test_fleet_plan_is_deterministic_and_mixed() -> None:
    assert parse_mix("esp32s3:60%,stm32l4:40%") == {"esp32s3": 0.6, "stm32l4": 0.4}
    for bad in ("esp32s3", "esp32s3:x%", "esp32s3:60%,stm32l4:30%"):
        with pytest.raises(SpecError):
            parse_mix(bad)
    with pytest.raises(SpecError, match="name=value"):
        parse_tags(["site"])
    hws = apportion(10, {"esp32s3": 0.6, "stm32l4": 0.4})
    assert hws.count("esp32s3") == 6 and set(hws[:2]) == {"esp32s3", "stm32l4"}
    a, b = plan_devices(FleetSpec(30, seed=9)), plan_devices(FleetSpec(30, seed=9))
    assert a == b and len({p.device_id for p in a}) == 30
    assert plan_devices(FleetSpec(30, seed=10)) != a
    assert {p.tags["temperature"] for p in a} == {"cold", "ambient", "hot"}


def test_network_faults_are_seeded() -> None:
    def fates(seed: int) -> list[tuple[Fate, int]]:
        nf = NetFaults(FLAKY, np.random.default_rng(seed))
        return [nf.inbound() for _ in range(500)]

    assert fates(4) == fates(4) and fates(4) != fates(5)
    kinds = {f for f, _ in fates(4)}
    assert kinds == set(Fate)
    quiet = NetFaults(NetProfile(), np.random.default_rng(1))
    assert all(quiet.inbound() == (Fate.DELIVER, 0) for _ in range(50)) and not quiet.duplicate_publish()



def test_credentials_refuse_an_unknown_mqtt_protocol() -> None:
    assert Credentials("127.0.0.1", 1883, "d", "pw", "d", bind_address="127.0.0.2").protocol == "5"
    with pytest.raises(ValueError, match="MQTT protocol '127.0.0.2'"):
        Credentials("127.0.0.1", 1883, "d", "pw", "d", "127.0.0.2")  # a source address where the protocol goes
