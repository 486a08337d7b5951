"""Hardware profiles: the built-in data file, user files (argument and environment), malformed input."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinyfleet.bundles.gate import GateInputError
from tinyfleet.bundles.profiles import ENV_VAR, ProfileError, builtin_profiles, load_profile, parse_profiles

GOOD = """
[tiny-m0]
description = "a user board"
sram_bytes = 32768
flash_bytes = 262144
model_sram_bytes = 16384
model_flash_bytes = 65536
bank_bytes = 131072
bank_count = 2
clock_mhz = 48
cycles_per_mac = 4.0
op_overhead_cycles = 1000
"""


@pytest.fixture(autouse=True)
def _no_env_profiles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


def test_builtin_profiles_match_the_issue() -> None:
    p = builtin_profiles()
    assert set(p) >= {"esp32s3", "stm32l4"}
    esp, stm = p["esp32s3"], p["stm32l4"]
    assert (esp.sram_bytes, esp.flash_bytes, esp.bank_count, esp.clock_mhz) == (512 * 1024, 8 * 1024 * 1024, 2, 240)
    assert (stm.sram_bytes, stm.flash_bytes, stm.bank_bytes, stm.bank_count) == (128 * 1024, 1024 * 1024, 512 * 1024, 2)
    assert stm.clock_mhz == 80
    for prof in (esp, stm):
        assert prof.model_sram_bytes < prof.sram_bytes
        assert prof.model_flash_bytes <= prof.bank_bytes


def test_user_file_adds_a_profile(tmp_path: Path) -> None:
    f = tmp_path / "mine.toml"
    f.write_text(GOOD)
    p = load_profile("tiny-m0", f)
    assert p.name == "tiny-m0" and p.model_sram_bytes == 16384 and p.cycles_per_mac == 4.0
    assert load_profile("stm32l4", f).clock_mhz == 80  # built-ins stay


def test_env_var_adds_profiles_and_a_user_table_replaces_a_builtin(tmp_path: Path, monkeypatch) -> None:
    f = tmp_path / "env.toml"
    f.write_text(GOOD.replace("[tiny-m0]", "[stm32l4]").replace("clock_mhz = 48", "clock_mhz = 120"))
    monkeypatch.setenv(ENV_VAR, str(f))
    assert load_profile("stm32l4").clock_mhz == 120


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(GateInputError) as e:
        load_profile("esp8266")
    assert str(e.value) == "unknown hardware profile 'esp8266' (known: esp32s3, stm32l4)"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("clock_mhz = 48", "clock_mhz = -1"), "field 'clock_mhz' must be an integer"),
        (lambda t: t.replace("clock_mhz = 48", 'clock_mhz = "fast"'), "field 'clock_mhz' must be an integer"),
        (lambda t: t.replace("clock_mhz = 48\n", ""), "missing field 'clock_mhz'"),
        (lambda t: t + "sram_kib = 32\n", "unknown field 'sram_kib'"),
        (lambda t: t.replace("[tiny-m0]", '["Tiny M0"]'), "the name must be 1..32 characters"),
        (lambda t: t.replace("model_sram_bytes = 16384", "model_sram_bytes = 65536"), "exceeds sram_bytes"),
        (lambda t: t.replace("bank_count = 2", "bank_count = 3"), "exceed flash_bytes"),
        (lambda t: t.replace("cycles_per_mac = 4.0", "cycles_per_mac = 0"), "'cycles_per_mac' must be a number"),
        (lambda t: t.replace("= 32768", "= "), "not valid TOML"),
    ],
)
def test_malformed_profile_is_one_line_naming_the_problem(tmp_path: Path, edit, message: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(edit(GOOD))
    with pytest.raises(ProfileError) as e:
        load_profile("tiny-m0", f)
    text = str(e.value)
    assert message in text and str(f) in text and "\n" not in text


def test_missing_profiles_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read it"):
        load_profile("esp32s3", tmp_path / "nope.toml")


def test_parse_is_pure_and_names_its_source() -> None:
    assert parse_profiles(GOOD, "inline")["tiny-m0"].bank_bytes == 131072
    with pytest.raises(ProfileError, match="in inline"):
        parse_profiles("[x]\ndescription = 1\n", "inline")


def test_firmware_offset_is_optional_and_checked(tmp_path) -> None:
    from tinyfleet.bundles.profiles import ProfileError, load_profile, parse_profiles

    assert load_profile("stm32l4").firmware_offset == 8192  # the execute-in-place STM32 port
    assert load_profile("esp32s3").firmware_offset is None  # ESP-IDF copies the firmware into an app slot
    base = (
        'description = "x"\nsram_bytes = 131072\nflash_bytes = 1048576\nmodel_sram_bytes = 65536\n'
        "model_flash_bytes = 262144\nbank_bytes = 524288\nbank_count = 2\nclock_mhz = 80\n"
        "cycles_per_mac = 2.0\nop_overhead_cycles = 2000\n"
    )
    for bad in ("100", "4096", "8200", "true", "600000"):
        with pytest.raises(ProfileError, match="firmware_offset"):
            parse_profiles(f"[b]\n{base}firmware_offset = {bad}\n", "t.toml")
    assert parse_profiles(f"[b]\n{base}firmware_offset = 5120\n", "t.toml")["b"].firmware_offset == 5120
