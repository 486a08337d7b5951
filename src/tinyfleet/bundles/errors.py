"""Typed bundle errors, one per verdict in docs/bundle-format.md ("Errors").

Every error is something the outside world sent (a bad or hostile bundle), so each carries a one-line
message that names the problem; the CLI and the server print it as is. `code` is the name the doc, the test
vector index and the C++ agent use for the same verdict.
"""

from __future__ import annotations

from typing import ClassVar


class BundleError(Exception):
    """Base class: the bundle was refused."""

    code: ClassVar[str] = "BundleError"

    def __str__(self) -> str:
        return f"{self.code}: {self.args[0] if self.args else 'invalid bundle'}"


class BadMagic(BundleError):
    code = "BadMagic"


class UnsupportedVersion(BundleError):
    code = "UnsupportedVersion"


class MalformedHeader(BundleError):
    code = "MalformedHeader"


class Truncated(BundleError):
    code = "Truncated"


class OutOfRange(BundleError):
    code = "OutOfRange"


class Oversize(BundleError):
    code = "Oversize"


class MalformedManifest(BundleError):
    code = "MalformedManifest"


class MalformedTable(BundleError):
    code = "MalformedTable"


class OverlappingComponents(BundleError):
    code = "OverlappingComponents"


class DuplicateComponent(BundleError):
    code = "DuplicateComponent"


class MissingComponent(BundleError):
    code = "MissingComponent"


class UnknownKeyId(BundleError):
    code = "UnknownKeyId"


class BadSignature(BundleError):
    code = "BadSignature"


class WrongHardwareClass(BundleError):
    code = "WrongHardwareClass"


class WrongDevice(BundleError):
    code = "WrongDevice"


class Expired(BundleError):
    code = "Expired"


class CounterTooLow(BundleError):
    code = "CounterTooLow"


class HashMismatch(BundleError):
    code = "HashMismatch"


# Every verdict, in the order above: docs/bundle-format.md's table and the agent's Status enum (wire reason
# codes 1..18; tests/protocol/test_codes.py checks the order against the generated codes).
ALL_ERRORS: tuple[type[BundleError], ...] = tuple(BundleError.__subclasses__())


class ComponentFormatError(ValueError):
    """A thresholds, calibration or health-vectors payload (or its JSON source) is malformed."""


class KeyFileError(ValueError):
    """A key file could not be read or is not an ECDSA P-256 key."""
