"""Hardware profiles: the device classes a model must fit, read from TOML data files, never from code.

The built-in profiles ship in `data/hardware_profiles.toml` beside this file. A user adds or replaces profiles with a
file of the same shape, passed as `extra_file` or named by `TINYFLEET_PROFILES` (several paths separated by
`os.pathsep`); later files win. Every field is checked: a malformed profile is a `ProfileError` naming the
file, the profile and the field.
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from .format import MAX_META_PREFIX
from .gate.errors import GateInputError

ENV_VAR = "TINYFLEET_PROFILES"
_NAME_RE = re.compile(r"[a-z0-9_-]{1,32}")  # the manifest's hardware_class alphabet


class ProfileError(GateInputError):
    """A profile file is missing or malformed, or the profile asked for does not exist."""


@dataclass(frozen=True)
class HardwareProfile:
    name: str
    description: str
    sram_bytes: int
    flash_bytes: int
    model_sram_bytes: int  # SRAM left for the TFLM tensor arena
    model_flash_bytes: int  # flash a model component may take
    bank_bytes: int  # one OTA bank: a whole bundle must fit
    bank_count: int
    clock_mhz: int
    cycles_per_mac: float  # latency-estimate assumption
    op_overhead_cycles: int  # latency-estimate assumption
    # Where the firmware payload must start in a bundle (bytes from its first byte), for targets that run the
    # firmware in place from the bank and link it for one address. None: right after the metadata.
    firmware_offset: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_INT_FIELDS = (
    "sram_bytes",
    "flash_bytes",
    "model_sram_bytes",
    "model_flash_bytes",
    "bank_bytes",
    "bank_count",
    "clock_mhz",
    "op_overhead_cycles",
)
_KNOWN = {f.name for f in fields(HardwareProfile)} - {"name"}
_OPTIONAL = {"firmware_offset"}


def _parse_one(name: str, table: Any, source: str) -> HardwareProfile:
    where = f"profile {name!r} in {source}"
    if not _NAME_RE.fullmatch(name):
        raise ProfileError(f"{where}: the name must be 1..32 characters of a-z 0-9 _ -")
    if not isinstance(table, dict):
        raise ProfileError(f"{where}: must be a table of fields")
    unknown = sorted(set(table) - _KNOWN)
    if unknown:
        raise ProfileError(f"{where}: unknown field {unknown[0]!r}")
    missing = sorted(_KNOWN - _OPTIONAL - set(table))
    if missing:
        raise ProfileError(f"{where}: missing field {missing[0]!r}")
    for key in _INT_FIELDS:
        v = table[key]
        if isinstance(v, bool) or not isinstance(v, int) or not 0 < v < 2**32:
            raise ProfileError(f"{where}: field {key!r} must be an integer in 1..4294967295, got {v!r}")
    cpm = table["cycles_per_mac"]
    if isinstance(cpm, bool) or not isinstance(cpm, int | float) or not 0 < cpm <= 1000:
        raise ProfileError(f"{where}: field 'cycles_per_mac' must be a number in (0, 1000], got {cpm!r}")
    fw = table.get("firmware_offset")
    if fw is not None and (isinstance(fw, bool) or not isinstance(fw, int) or fw < MAX_META_PREFIX or fw % 16):
        raise ProfileError(
            f"{where}: field 'firmware_offset' must be a multiple of 16 and at least {MAX_META_PREFIX} "
            f"(the largest metadata prefix), got {fw!r}"
        )
    if not isinstance(table["description"], str):
        raise ProfileError(f"{where}: field 'description' must be a string")
    p = HardwareProfile(name=name, **{**table, "cycles_per_mac": float(cpm)})
    if p.model_sram_bytes > p.sram_bytes:
        raise ProfileError(f"{where}: model_sram_bytes {p.model_sram_bytes} exceeds sram_bytes {p.sram_bytes}")
    if p.bank_bytes * p.bank_count > p.flash_bytes:
        raise ProfileError(f"{where}: {p.bank_count} banks of {p.bank_bytes} bytes exceed flash_bytes {p.flash_bytes}")
    if p.firmware_offset is not None and p.firmware_offset >= p.bank_bytes:
        raise ProfileError(f"{where}: firmware_offset {p.firmware_offset} is outside the {p.bank_bytes}-byte bank")
    if p.model_flash_bytes > p.bank_bytes:
        raise ProfileError(f"{where}: model_flash_bytes {p.model_flash_bytes} exceeds bank_bytes {p.bank_bytes}")
    return p


def parse_profiles(text: str, source: str) -> dict[str, HardwareProfile]:
    """Profiles from TOML text; `source` names the file in error messages."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(f"profiles file {source}: not valid TOML ({e})") from None
    return {name: _parse_one(name, table, source) for name, table in doc.items()}


def _read(path: Path) -> dict[str, HardwareProfile]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ProfileError(f"profiles file {path}: cannot read it ({e.__class__.__name__}: {e})") from None
    return parse_profiles(text, str(path))


def builtin_profiles() -> dict[str, HardwareProfile]:
    return dict(_parsed_builtin())


@functools.cache
def _parsed_builtin() -> dict[str, HardwareProfile]:
    """Parsed once per process (the file ships inside the package); every provisioning asks for it."""
    res = resources.files("tinyfleet.bundles").joinpath("data", "hardware_profiles.toml")
    return parse_profiles(res.read_text(encoding="utf-8"), "built-in hardware_profiles.toml")


def load_profiles(extra_file: Path | None = None) -> dict[str, HardwareProfile]:
    """Built-in profiles, then those of TINYFLEET_PROFILES, then `extra_file`; later ones replace earlier."""
    profiles = builtin_profiles()
    env = os.environ.get(ENV_VAR, "")
    paths = [Path(p) for p in env.split(os.pathsep) if p]
    if extra_file is not None:
        paths.append(Path(extra_file))
    for p in paths:
        profiles.update(_read(p))
    return profiles


def load_profile(name: str, extra_file: Path | None = None) -> HardwareProfile:
    profiles = load_profiles(extra_file)
    try:
        return profiles[name]
    except KeyError:
        raise ProfileError(f"unknown hardware profile {name!r} (known: {', '.join(sorted(profiles))})") from None
