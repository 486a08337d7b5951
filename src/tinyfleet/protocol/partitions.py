"""Ingest partitions: how server replicas split device messages on any MQTT broker (docs/device-protocol.md,
"Ingest partitions"). Pure: no broker, no database.

The 256 shards of the device topics are dealt to `slots` partitions (shard i to slot i mod slots). Each slot is
one persistent broker session of its own, client id `_tf-ingest-<slot>`, subscribed to its shards' state,
telemetry and presence topics: the session, not the replica, owns the slot's queued and unacknowledged
messages. A replica that holds a slot's lease connects that session; when the replica dies another one takes
the lease, connects the same session and receives everything the dead one had not acknowledged.
"""

from __future__ import annotations

SHARDS = 256
MAX_SLOTS = SHARDS
SLOT_CLIENT_PREFIX = "_tf-ingest-"  # no device id starts with "_" (topics.DEVICE_ID_RE)
KINDS = ("state", "telemetry", "presence")


def check_slots(slots: int) -> None:
    if not 1 <= slots <= MAX_SLOTS:
        raise ValueError(f"ingest slots must be 1..{MAX_SLOTS}, not {slots}")


def slot_shards(slot: int, slots: int) -> list[str]:
    check_slots(slots)
    if not 0 <= slot < slots:
        raise ValueError(f"slot {slot} is not in 0..{slots - 1}")
    return [f"{i:02x}" for i in range(slot, SHARDS, slots)]


def slot_filters(slot: int, slots: int) -> list[str]:
    """Topic filters of one slot's session: every device topic a device publishes, in the slot's shards."""
    return [f"fleet/d/{s}/+/{kind}" for s in slot_shards(slot, slots) for kind in KINDS]


def slot_client_id(slot: int) -> str:
    return f"{SLOT_CLIENT_PREFIX}{slot:03d}"


def assign(members: list[int], me: int, slots: int) -> set[int]:
    """The slots replica `me` should hold when the live replicas are `members` (their member numbers): slot k
    goes to the member ranked k mod len(members), so the slots spread evenly and every replica computes the
    same split from the same list."""
    check_slots(slots)
    ranked = sorted(set(members))
    if me not in ranked:
        return set()
    rank = ranked.index(me)
    return {k for k in range(slots) if k % len(ranked) == rank}
