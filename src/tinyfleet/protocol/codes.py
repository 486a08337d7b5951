"""Wire codes of docs/device-protocol.md, generated from the device agent's C++ headers: do not edit.

Regenerate with `python scripts/gen_protocol_codes.py` after changing device/include/tinyfleet/protocol.h,
status.h or transitions.h; tests/protocol/test_codes.py fails while this file and the headers disagree.
"""

from __future__ import annotations

from enum import IntEnum


class Reason(IntEnum):
    """TFSR `reason` (u16): never renumbered."""

    NONE = 0
    BadMagic = 1
    UnsupportedVersion = 2
    MalformedHeader = 3
    Truncated = 4
    OutOfRange = 5
    Oversize = 6
    MalformedManifest = 7
    MalformedTable = 8
    OverlappingComponents = 9
    DuplicateComponent = 10
    MissingComponent = 11
    UnknownKeyId = 12
    BadSignature = 13
    WrongHardwareClass = 14
    WrongDevice = 15
    Expired = 16
    CounterTooLow = 17
    HashMismatch = 18
    BadDesired = 32
    StaleDesired = 33
    UpToDate = 34
    Superseded = 35
    MetaMismatch = 36
    TooLarge = 37
    BatteryLow = 38
    BadBlock = 39
    FlashError = 40
    PreviouslyFailed = 41
    HealthOutputMismatch = 64
    HealthLatency = 65
    HealthRam = 66
    HealthBrokerTimeout = 67
    HealthInference = 68
    TrialExhausted = 69
    HealthFeatureExtractor = 70
    Resumed = 96
    ComponentReady = 97
    Staged = 98
    Confirmed = 99


class AgentState(IntEnum):
    """TFSR `from_state` / `to_state` (u8). Names are the agent's, upper-cased (as stored and shown)."""

    POWERON = 0
    IDLE = 1
    CHECKING = 2
    DEFERRED = 3
    DOWNLOADING = 4
    REBOOTING = 5
    TRIAL = 6
    FAILED = 7


class AgentEvent(IntEnum):
    """TFSR `event` (u8)."""

    Boot = 1
    Desired = 2
    Meta = 3
    Block = 4
    ConnectionUp = 5
    ConnectionDown = 6
    Tick = 7
    Battery = 8
    HealthResult = 9


REASON_NAMES: dict[int, str] = {
    0: "None",
    1: "BadMagic",
    2: "UnsupportedVersion",
    3: "MalformedHeader",
    4: "Truncated",
    5: "OutOfRange",
    6: "Oversize",
    7: "MalformedManifest",
    8: "MalformedTable",
    9: "OverlappingComponents",
    10: "DuplicateComponent",
    11: "MissingComponent",
    12: "UnknownKeyId",
    13: "BadSignature",
    14: "WrongHardwareClass",
    15: "WrongDevice",
    16: "Expired",
    17: "CounterTooLow",
    18: "HashMismatch",
    32: "BadDesired",
    33: "StaleDesired",
    34: "UpToDate",
    35: "Superseded",
    36: "MetaMismatch",
    37: "TooLarge",
    38: "BatteryLow",
    39: "BadBlock",
    40: "FlashError",
    41: "PreviouslyFailed",
    64: "HealthOutputMismatch",
    65: "HealthLatency",
    66: "HealthRam",
    67: "HealthBrokerTimeout",
    68: "HealthInference",
    69: "TrialExhausted",
    70: "HealthFeatureExtractor",
    96: "Resumed",
    97: "ComponentReady",
    98: "Staged",
    99: "Confirmed",
}
STATE_NAMES: dict[int, str] = {
    0: "POWERON",
    1: "IDLE",
    2: "CHECKING",
    3: "DEFERRED",
    4: "DOWNLOADING",
    5: "REBOOTING",
    6: "TRIAL",
    7: "FAILED",
}
EVENT_NAMES: dict[int, str] = {
    1: "Boot",
    2: "Desired",
    3: "Meta",
    4: "Block",
    5: "ConnectionUp",
    6: "ConnectionDown",
    7: "Tick",
    8: "Battery",
    9: "HealthResult",
}
