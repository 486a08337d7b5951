"""Provisioning a batch of devices in one request: all of them or none.

One database transaction inserts every device, then every identity file is written and every broker
confirmation is awaited at once (broker_control.py, apply_many), so a batch costs one request, two commits
and about one broker round trip instead of that many per device. The batch holds the sink's locks of all its
devices (taken in one global order, so two batches never wait on each other in a circle) across both sides.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from sqlmodel import Session

from tinyfleet.bundles.profiles import load_profiles
from tinyfleet.server.broker.passwords import hash_password, new_password
from tinyfleet.server.db.models import Device
from tinyfleet.server.services.credential_sync import CredentialSink
from tinyfleet.server.services.devices import insert_new, remove_rows, validate_identity
from tinyfleet.server.services.errors import BadRequest, ServiceError, Unavailable, Unprocessable

MAX_BATCH = 500  # at most 16 tags each, 500 devices stay below the default 1 MiB request body limit


@dataclass(frozen=True)
class NewDevice:
    id: str
    hardware_class: str
    tags: Mapping[str, str]


def check_batch(batch: Sequence[NewDevice], reserved: frozenset[str]) -> None:
    """Every rule of a single provisioning, for each device, plus the batch's own: its size and no id twice.
    The error names the first offending entry by its index."""
    if not 1 <= len(batch) <= MAX_BATCH:
        raise BadRequest(f"a batch holds 1 to {MAX_BATCH} devices, not {len(batch)}")
    known = load_profiles()
    first_at: dict[str, int] = {}
    for i, d in enumerate(batch):
        try:
            validate_identity(d.id, d.hardware_class, d.tags, reserved)
            if d.hardware_class not in known:
                raise BadRequest(f"no hardware profile {d.hardware_class!r} (known: {', '.join(sorted(known))})")
        except ServiceError as exc:
            raise BadRequest(f"devices[{i}]: {exc.message}") from None
        if first_at.setdefault(d.id, i) != i:  # 422: the schema says so in words (JSON Schema cannot)
            raise Unprocessable(f"devices[{i}]: device id {d.id!r} is also devices[{first_at[d.id]}]: a batch names "
                             "each device once")  # fmt: skip


@contextlib.contextmanager
def _holding(sink: CredentialSink, device_ids: Sequence[str]) -> Iterator[None]:
    locks = sorted({id(lk): lk for lk in map(sink.exclusive, device_ids)}.items())
    with contextlib.ExitStack() as stack:
        for _, lock in locks:
            stack.enter_context(lock)
        yield


def provision_batch(
    session: Session, sink: CredentialSink, batch: Sequence[NewDevice], *, trust_anchors: str | None = None
) -> list[tuple[Device, str]]:
    """Register every device of the batch with broker credentials, or none of them (BadRequest, Conflict when
    one is already registered, Unavailable when the broker does not take them all). Returns each device with
    its clear password, in the batch's order. `trust_anchors`: the record of the CA bundle they are handed."""
    check_batch(batch, sink.reserved)
    ids = [d.id for d in batch]
    now = time.time()
    passwords = [new_password() for _ in batch]
    rows = [Device(id=d.id, hardware_class=d.hardware_class, tags=dict(d.tags), created_at=now,
                   broker_password_hash=hash_password(pw), trust_anchors=trust_anchors)
            for d, pw in zip(batch, passwords, strict=True)]  # fmt: skip
    with _holding(sink, ids):
        insert_new(session, rows)  # Conflict names the ids already registered; no connection held after it
        try:
            sink.write_many({r.id: r.broker_password_hash for r in rows})
            sink.confirm_many(ids, True)
        except Exception as exc:  # put both sides back: no device of the batch stays
            session.rollback()
            remove_rows(session, ids)
            session.commit()
            with contextlib.suppress(Exception):
                sink.write_many(dict.fromkeys(ids))
            raise Unavailable(f"the broker did not take the batch's credentials: {exc}; no device of the batch was "
                              "registered, try again") from exc  # fmt: skip
    return list(zip(rows, passwords, strict=True))
