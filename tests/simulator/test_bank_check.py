"""The booted bank checked in Python apart from the C++ verifier (bank_check.py), and the invariant it feeds.

The gap this closes: `never a mixed bundle` used to rest on the agent's own boot verification. A payload
altered in a booted bank behind the verifier's back passed every invariant; it must now fail `never-mixed`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tinyfleet.bundles.components import ComponentType
from tinyfleet.bundles.format import parse_bundle
from tinyfleet.bundles.signing import generate_private_key, public_der
from tinyfleet.simulator import releases
from tinyfleet.simulator.bank_check import BankChecker
from tinyfleet.simulator.chaos import runner
from tinyfleet.simulator.chaos.invariants import Facts, check
from tinyfleet.simulator.chaos.scenarios import GOOD
from tinyfleet.simulator.device import SimDevice
from tinyfleet.simulator.flash import FlashLayout
from tinyfleet.simulator.fleet import Fleet, FleetSpec, plan_devices
from tinyfleet.simulator.mqtt_link import Credentials
from tinyfleet.simulator.server_proc import free_port
from tinyfleet.simulator.world import BASE

HW = "esp32s3"
BANK = FlashLayout().sizes()[0]


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return generate_private_key()


@pytest.fixture(scope="module")
def old(key: ec.EllipticCurvePrivateKey) -> bytes:
    return releases.build(BASE, HW, key)


@pytest.fixture(scope="module")
def new(key: ec.EllipticCurvePrivateKey) -> bytes:
    return releases.build(GOOD, HW, key)


def bank_with(bundle: bytes) -> bytearray:
    bank = bytearray(b"\xff" * BANK)
    bank[: len(bundle)] = bundle
    return bank


def reader(bank: bytearray):  # noqa: ANN201
    def read(offset: int, length: int) -> bytes:
        if offset + length > len(bank):
            raise ValueError(f"read beyond the bank: {offset}+{length}")
        return bytes(bank[offset : offset + length])

    return read


def checker(key: ec.EllipticCurvePrivateKey) -> BankChecker:
    return BankChecker.of_der([public_der(key.public_key())])


def test_an_intact_bank_passes(key: ec.EllipticCurvePrivateKey, old: bytes) -> None:
    b = parse_bundle(old)
    assert checker(key).problem(reader(bank_with(old)), b.digest, HW, "d0") is None


def test_a_mixed_bank_fails_on_the_component_that_came_from_another_bundle(key, old: bytes, new: bytes) -> None:
    """The new bundle's metadata over the old bundle's firmware: what an install that copied the wrong
    component, or stopped half way, would leave. Its metadata is signed and names the new bundle."""
    n, o = parse_bundle(new), parse_bundle(old)
    fw_new, fw_old = n.component(ComponentType.FIRMWARE), o.component(ComponentType.FIRMWARE)
    assert (fw_new.offset, fw_new.length) == (fw_old.offset, fw_old.length) and fw_new.sha256 != fw_old.sha256
    bank = bank_with(new)
    bank[fw_new.offset : fw_new.end] = old[fw_old.offset : fw_old.end]
    problem = checker(key).problem(reader(bank), n.digest, HW, "d0")
    assert problem is not None and "firmware payload" in problem and "signed table" in problem


def test_the_bank_must_hold_the_bundle_the_device_names(key, old: bytes, new: bytes) -> None:
    problem = checker(key).problem(reader(bank_with(old)), parse_bundle(new).digest, HW, "d0")
    assert problem is not None and "says it runs" in problem


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("erased", "no bundle metadata"),
        ("untrusted key", "does not verify in Python"),
        ("other class", "is for 'esp32s3'"),
        ("other device", "scoped to"),
    ],
)
def test_the_metadata_is_checked_in_python(key, old: bytes, case: str, needle: str) -> None:
    digest = parse_bundle(old).digest
    bank, hw, device = bank_with(old), HW, "d0"
    checks = checker(key)
    if case == "erased":
        bank = bytearray(b"\xff" * BANK)
    elif case == "untrusted key":
        checks = checker(generate_private_key())
    elif case == "other class":
        hw = "stm32l4"
    else:
        scoped = releases.build(releases.Release("scoped", counter=1, device_scope="d7"), HW, key)
        bank, digest = bank_with(scoped), parse_bundle(scoped).digest
    problem = checks.problem(reader(bank), digest, hw, device)
    assert problem is not None and needle in problem


def test_the_digest_cache_never_hides_a_payload_change(key, old: bytes) -> None:
    """The signature verdict is cached by the metadata digest; payloads are hashed again on every check."""
    b = parse_bundle(old)
    checks, bank = checker(key), bank_with(old)
    assert checks.problem(reader(bank), b.digest, HW, "d0") is None
    model = b.component(ComponentType.MODEL)
    bank[model.offset + model.length // 2] ^= 0x01
    problem = checks.problem(reader(bank), b.digest, HW, "d0")
    assert problem is not None and "model payload" in problem
    assert checks.checks == 2 and len(checks._meta) == 1


# --- on a simulated device: the real agent core, its emulated flash and its boot --------------------------


@pytest.fixture
def device(key: ec.EllipticCurvePrivateKey, old: bytes) -> Iterator[SimDevice]:
    """A device provisioned with `old` and booted, offline (its broker port has no broker)."""
    loop = asyncio.new_event_loop()
    fleet = Fleet([public_der(key.public_key())])
    plan = plan_devices(FleetSpec(1, seed=3, mix={HW: 1.0}))[0]
    d = fleet.add(plan)
    d.attach(loop, Credentials("127.0.0.1", free_port(), plan.device_id, "pw", plan.device_id), fleet.stats)
    d.provision(old)
    d.power_on()
    assert d.platform.image is not None and d.log.bricked is None
    yield d
    loop.close()


def flip_in_flash(d: SimDevice, area: int, offset: int) -> None:
    """Change one byte of the flash behind the agent's back, the only way NOR allows: erase its sector and
    program it again with that byte changed."""
    sector = d.platform.layout.sector
    start = offset - offset % sector
    data = bytearray(d.platform.flash_read(area, start, sector))
    data[offset - start] ^= 0x01
    assert d.platform.flash_erase(area, start, sector) and d.platform.flash_write(area, start, bytes(data))


def facts_of(d: SimDevice) -> Facts:
    running, state = runner._own(d)
    view = {"running_bundle": running, "state": state}
    return Facts([runner.device_facts(d, view, frozenset(), frozenset())], [], "completed")


def test_every_boot_is_checked_and_an_intact_device_passes(device: SimDevice) -> None:
    assert device.banks.checks == 1 and device.log.bank_problem is None
    assert check(facts_of(device)) == []
    assert device.banks.checks == 2  # the end-of-run check read the bank again


def test_a_payload_altered_in_the_booted_bank_fails_never_mixed(device: SimDevice, old: bytes) -> None:
    image = device.platform.image
    assert image is not None
    model = parse_bundle(old).component(ComponentType.MODEL)
    flip_in_flash(device, image.bank, model.offset + 100)
    # The agent does not look again until its next boot: it still runs the bundle, and no other invariant sees it.
    assert device.agent.running_digest == image.digest and runner._own(device)[0] == image.bundle_id
    violations = check(facts_of(device))
    assert [v.invariant for v in violations] == ["never-mixed"]
    assert "the model payload" in violations[0].detail and f"bank {image.bank}" in violations[0].detail
