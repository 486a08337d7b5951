"""Where device broker credentials go, one device at a time, and how changes to one device are kept in order.

A change to a device's credentials is a database change plus a broker change. The registry makes both under
the sink's lock for that device (`exclusive`), so what the broker holds for a device is what the database
last committed for it, even when two requests change the same device at once.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Protocol

from tinyfleet.protocol import topics


class CredentialSink(Protocol):
    @property
    def reserved(self) -> frozenset[str]:
        """Broker usernames the server owns: never a device id."""
        ...

    def exclusive(self, device_id: str) -> threading.Lock:
        """Held across one device's database change and broker change."""
        ...

    def write(self, device_id: str, password_hash: str | None) -> None:
        """Give the device this `$7$` hash at the broker (None: revoke it). Raise if it cannot be written."""
        ...

    def confirm(self, device_id: str, present: bool) -> None:
        """Return once the broker holds what the last `write` gave it (an identity, or none when not
        `present`) and has dropped the device's live session; raise if it does not say so."""
        ...

    def write_many(self, hashes: Mapping[str, str | None]) -> None:
        """`write` for each device of a batch (device id -> hash, None: revoke)."""
        ...

    def confirm_many(self, device_ids: Sequence[str], present: bool) -> None:
        """`confirm` for each device of a batch, all awaited at once; raise unless every one is confirmed."""
        ...


class ShardLocks:
    """One lock per shard of the device-id space (topics.shard): changes to different shards never wait for
    each other, changes to one device always do."""

    def __init__(self) -> None:
        self._locks = [threading.Lock() for _ in range(256)]

    def __call__(self, device_id: str) -> threading.Lock:
        return self._locks[int(topics.shard(device_id), 16)]
