"""The embedded broker's identities: one file per broker user, and what the server and the identity plugin
(plugin/tinyfleet_identity.c) say to each other over `$CONTROL/tinyfleet/v1` (pure: no files, no processes).

A device's identity is `<identities>/<shard>/<device id>` and a server user's `<identities>/server/<user>`,
each holding that user's `$7$` hash (passwords.py). The server adds or rotates one identity by replacing its
one file and revokes it by removing the file; the plugin reads the one file a CONNECT needs, so neither
costs the broker anything that grows with the fleet (docs/scaling.md, "Device identity").
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import PurePosixPath

from tinyfleet.protocol import topics

CONTROL_TOPIC = "$CONTROL/tinyfleet/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
CONTROL_ALL = "$CONTROL/tinyfleet/#"
SERVER_DIR = "server"
SHARD_DIRS = tuple(f"{i:02x}" for i in range(256))
PLUGIN_FILE = "tinyfleet_identity.so"

# What the plugin reads in an identity's file, as the broker's user, when the server asks.
PRESENT, ABSENT, INVALID, UNREADABLE, REFUSED = "present", "absent", "invalid", "unreadable", "refused"


def relative_path(username: str, server_users: Collection[str]) -> PurePosixPath:
    """The identity file of `username` inside the identities directory (the plugin builds the same path)."""
    if not topics.valid_device_id(username):
        raise ValueError(f"broker user {username!r} must be {topics.DEVICE_ID_RULE}")
    if username in server_users:
        return PurePosixPath(SERVER_DIR, username)
    return PurePosixPath(topics.shard(username), username)


def apply_request(request_id: str, username: str) -> bytes:
    """Ask the plugin to drop `username`'s live session and say what its identity file now holds."""
    if not (topics.valid_device_id(request_id) and len(request_id) <= 40 and topics.valid_device_id(username)):
        raise ValueError(f"cannot ask the broker about {username!r} with request id {request_id!r}")
    return f"apply {request_id} {username}".encode()


def parse_response(payload: bytes) -> tuple[str, str] | None:
    """`<request id> <state>` -> (request id, state); None for anything else."""
    parts = payload.decode("ascii", errors="replace").split(" ")
    if len(parts) != 2 or parts[1] not in (PRESENT, ABSENT, INVALID, UNREADABLE, REFUSED):
        return None
    return parts[0], parts[1]
