"""The MQTT topic namespace (docs/device-protocol.md, "Topics"). The ACL, the publisher, ingest and the
simulator all use these.

Devices have a level of their own, `fleet/d/`, so no device id, whatever it is, can name a server-owned topic
(`fleet/bundles/`, `fleet/blobs/`, `fleet/_server/`). Under it each device sits in one of 256 shards (the low
byte of the FNV-1a hash of its id, two hex digits), so server replicas can split ingest by topic filter on
any broker.
"""

from __future__ import annotations

import re

ROOT = "fleet"
DEVICES = f"{ROOT}/d"
# One grammar for a device id, in the API, the database, the broker's files and the topics: full match
# (re.fullmatch; `$` would also match before a trailing newline). No ':' (the password file's separator).
DEVICE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
DEVICE_ID_RULE = "1-64 of A-Z a-z 0-9 . _ - (starting with a letter or digit)"
KINDS = ("desired", "state", "telemetry", "presence")


def valid_device_id(device_id: object) -> bool:
    return isinstance(device_id, str) and DEVICE_ID_RE.fullmatch(device_id) is not None


def shard(device_id: str) -> str:
    h = 2166136261
    for b in device_id.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return f"{h & 0xFF:02x}"


def _device(device_id: str, kind: str) -> str:
    if not valid_device_id(device_id):
        raise ValueError(f"device id {device_id!r} is not {DEVICE_ID_RULE}")
    return f"{DEVICES}/{shard(device_id)}/{device_id}/{kind}"


def desired(device_id: str) -> str:
    return _device(device_id, "desired")


def state(device_id: str) -> str:
    return _device(device_id, "state")


def telemetry(device_id: str) -> str:
    return _device(device_id, "telemetry")


def presence(device_id: str) -> str:
    return _device(device_id, "presence")


def bundle_meta(digest: str) -> str:
    return f"{ROOT}/bundles/{digest}/meta"


def blob_block(sha256: str, index: int) -> str:
    return f"{ROOT}/blobs/{sha256}/b/{index}"


def server_marker(server_user: str) -> str:
    """The server's own retained marker (server/workers/retained_guard.py)."""
    return f"{ROOT}/_server/{server_user}/marker"


BUNDLES_ALL = f"{ROOT}/bundles/#"
BLOBS_ALL = f"{ROOT}/blobs/#"
STATE_ALL = f"{DEVICES}/+/+/state"
TELEMETRY_ALL = f"{DEVICES}/+/+/telemetry"
PRESENCE_ALL = f"{DEVICES}/+/+/presence"


def device_from_topic(topic: str) -> str | None:
    """`fleet/d/<shard>/<device>/<kind>` -> `<device>`; None for anything else, a wrong shard included."""
    parts = topic.split("/")
    if (
        len(parts) == 5
        and f"{parts[0]}/{parts[1]}" == DEVICES
        and parts[4] in KINDS
        and valid_device_id(parts[3])
        and parts[2] == shard(parts[3])
    ):
        return parts[3]
    return None
