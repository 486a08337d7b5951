"""The MQTT topic namespace (docs/device-protocol.md). The ACL generator and the publisher both use these."""

from __future__ import annotations

import re

ROOT = "fleet"
DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


def desired(device_id: str) -> str:
    return f"{ROOT}/{device_id}/desired"


def state(device_id: str) -> str:
    return f"{ROOT}/{device_id}/state"


def telemetry(device_id: str) -> str:
    return f"{ROOT}/{device_id}/telemetry"


def presence(device_id: str) -> str:
    return f"{ROOT}/{device_id}/presence"


def bundle_meta(digest: str) -> str:
    return f"{ROOT}/bundles/{digest}/meta"


def blob_block(sha256: str, index: int) -> str:
    return f"{ROOT}/blobs/{sha256}/b/{index}"


def server_marker(server_user: str) -> str:
    """The server's own retained marker (server/workers/retained_guard.py). `_server` can never be a device id."""
    return f"{ROOT}/_server/{server_user}/marker"


BUNDLES_ALL = f"{ROOT}/bundles/#"
BLOBS_ALL = f"{ROOT}/blobs/#"
STATE_ALL = f"{ROOT}/+/state"
TELEMETRY_ALL = f"{ROOT}/+/telemetry"
PRESENCE_ALL = f"{ROOT}/+/presence"


def device_from_topic(topic: str) -> str | None:
    """`fleet/<device>/<kind>` -> `<device>`; None for anything else."""
    parts = topic.split("/")
    if len(parts) == 3 and parts[0] == ROOT and DEVICE_ID_RE.match(parts[1]):
        return parts[1]
    return None
