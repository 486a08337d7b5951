"""Broker identities for the clustered broker (broker/cluster/node.mjs): one Redis key per broker user.

`tinyfleet:identity:device:<id>` and `tinyfleet:identity:server:<user>` hold the user's `$7$` hash (passwords.py),
the same contract as the embedded Mosquitto's one file per identity: adding, rotating or revoking a device is
one SET or DEL, whatever the fleet's size. After each change the server publishes the user's name on
`tinyfleet:kick`; every broker node drops its connections of that user, so a rotated or revoked device loses
its live session on whichever node it is connected to, and must connect again with what the key now holds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence

import redis

PREFIX = "tinyfleet:identity:"
KICK_CHANNEL = "tinyfleet:kick"


class ClusterIdentityError(RuntimeError):
    """The identity store could not be reached or does not hold what the server wrote."""


def device_key(device_id: str) -> str:
    return f"{PREFIX}device:{device_id}"


def server_key(user: str) -> str:
    return f"{PREFIX}server:{user}"


class ClusterCredentialSink:
    """The CredentialSink (services/credential_sync.py) of a clustered broker."""

    def __init__(self, url: str, server_users: list[str], exclusive: Callable[[str], threading.Lock]) -> None:
        self.redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, decode_responses=True)
        self.reserved = frozenset(server_users)
        self.exclusive = exclusive  # one lock per shard (services/credential_sync.py)
        self._written: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def write(self, device_id: str, password_hash: str | None) -> None:
        try:
            if password_hash is None:
                self.redis.delete(device_key(device_id))
            else:
                self.redis.set(device_key(device_id), password_hash)
        except redis.RedisError as exc:
            raise ClusterIdentityError(f"cannot write {device_id!r}'s identity to the cluster store: {exc}") from exc
        with self._lock:
            self._written[device_id] = password_hash

    def confirm(self, device_id: str, present: bool) -> None:
        with self._lock:
            want = self._written.pop(device_id, None)
        try:
            self.redis.publish(KICK_CHANNEL, device_id)
            held = self.redis.get(device_key(device_id))
        except redis.RedisError as exc:
            raise ClusterIdentityError(f"cannot reach the cluster store for {device_id!r}: {exc}") from exc
        if (held is not None) != present or (present and held != want):
            state = "absent" if held is None else "another identity"
            raise ClusterIdentityError(f"the cluster store holds {state} for {device_id!r}")

    def write_many(self, hashes: Mapping[str, str | None]) -> None:
        """`write` for a batch, in one round trip (a pipeline in a MULTI: all keys change or none)."""
        try:
            pipe = self.redis.pipeline(transaction=True)
            for device_id, password_hash in hashes.items():
                if password_hash is None:
                    pipe.delete(device_key(device_id))
                else:
                    pipe.set(device_key(device_id), password_hash)
            pipe.execute()
        except redis.RedisError as exc:
            raise ClusterIdentityError(f"cannot write a batch of {len(hashes)} identities to the cluster store: "
                                       f"{exc}") from exc  # fmt: skip
        with self._lock:
            self._written.update(hashes)

    def confirm_many(self, device_ids: Sequence[str], present: bool) -> None:
        """`confirm` for a batch: one kick each and one read back of every key, in one round trip."""
        with self._lock:
            want = [self._written.pop(d, None) for d in device_ids]
        try:
            pipe = self.redis.pipeline(transaction=False)
            for d in device_ids:
                pipe.publish(KICK_CHANNEL, d)
            pipe.mget([device_key(d) for d in device_ids])
            held = pipe.execute()[-1] if device_ids else []
        except redis.RedisError as exc:
            raise ClusterIdentityError(f"cannot reach the cluster store for a batch of {len(device_ids)}: "
                                       f"{exc}") from exc  # fmt: skip
        for d, h, w in zip(device_ids, held, want, strict=True):
            if (h is not None) != present or (present and h != w):
                state = "absent" if h is None else "another identity"
                raise ClusterIdentityError(f"the cluster store holds {state} for {d!r}")

    def register_server_user(self, user: str, password_hash: str) -> None:
        """This replica's own broker user (every replica writes its own at start)."""
        try:
            self.redis.set(server_key(user), password_hash)
        except redis.RedisError as exc:
            raise ClusterIdentityError(f"cannot write the server user {user!r} to the cluster store: {exc}") from exc

    def sync(self, device_hashes: Mapping[str, str], batch: int = 1000) -> int:
        """Make the store hold exactly the database's devices (a server that died between its database commit
        and its store write); returns how many keys it changed."""
        changed = 0
        try:
            ids = sorted(device_hashes)
            for i in range(0, len(ids), batch):
                chunk = ids[i : i + batch]
                held = self.redis.mget([device_key(d) for d in chunk])
                fix = {
                    device_key(d): device_hashes[d] for d, h in zip(chunk, held, strict=True) if h != device_hashes[d]
                }
                if fix:
                    self.redis.mset(fix)
                    changed += len(fix)
            stale = [
                k for k in self.redis.scan_iter(match=f"{PREFIX}device:*", count=batch)
                if k[len(PREFIX) + len("device:"):] not in device_hashes
            ]  # fmt: skip
            for i in range(0, len(stale), batch):
                self.redis.delete(*stale[i : i + batch])
                for k in stale[i : i + batch]:
                    self.redis.publish(KICK_CHANNEL, k[len(PREFIX) + len("device:") :])
            changed += len(stale)
        except redis.RedisError as exc:
            raise ClusterIdentityError(f"cannot sync identities with the cluster store: {exc}") from exc
        return changed

    def close(self) -> None:
        self.redis.close()
