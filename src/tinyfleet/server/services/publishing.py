"""What the server publishes, read from the database: bundles (blocks, then meta), their retirement, and each
device's desired state (docs/device-protocol.md).

Blocks are retained and addressed by component hash, so a component shared by several live bundles is
published once and cleared only when the last live bundle that carries it is retired. The messages leave
through an `Outbox` (workers/publisher.py over the MQTT link); this module decides what they are and records
in the caller's session what was published, without committing: if the caller's transaction rolls back, the
retained messages stay and publishing again is harmless. Desired states are the exception: they are committed
first, then published, and each device's row records the last one the broker acknowledged, so a desired state
whose publisher died in between is still owed, in the database, to whichever replica publishes next.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, Protocol

from sqlmodel import Session, col, select

from tinyfleet.bundles import parse_bundle
from tinyfleet.protocol import topics
from tinyfleet.protocol.records import block_count, encode_block, encode_desired
from tinyfleet.server.db.models import Bundle, Device, Rollout, RolloutDevice
from tinyfleet.server.rollouts.states import ACTIVE
from tinyfleet.server.services.bundles import read_bytes

log = logging.getLogger("tinyfleet.server.publisher")

Kind = Literal["block", "meta", "desired", "clear"]  # clear: a deleted device's retained topics


class Outbox(Protocol):
    def retained(self, messages: Iterable[tuple[str, bytes]], kind: Kind) -> int:
        """Publish each (topic, payload) retained at QoS 1 and wait until the broker has every one; -> count.
        An empty payload clears the topic."""
        ...

    def stamp(self) -> None:
        """A batch of retained publications is acknowledged (the retained guard's marker follows)."""
        ...

    @property
    def connected(self) -> bool:
        """Whether publishing can succeed now (the broker is reachable)."""
        ...


def live_blob_hashes(session: Session, exclude: str | None = None) -> set[str]:
    out: set[str] = set()
    for b in session.exec(select(Bundle).where(Bundle.status == "published")):
        if b.bundle_id != exclude:
            out.update(c["sha256"] for c in b.components)
    return out


def publish_bundle(session: Session, outbox: Outbox, bundle_dir: Path, row: Bundle, *, again: bool = False) -> int:
    """Publish the bundle's missing blocks and its meta (retained); returns the blocks sent. `again`: publish
    every block and the meta even if already published (the broker may have lost them). Marks the row
    published in `session`; the caller commits."""
    if row.status == "published" and not again:
        return 0
    parsed = parse_bundle(read_bytes(bundle_dir, row))
    live = set() if again else live_blob_hashes(session, exclude=row.bundle_id)
    blocks = [
        (topics.blob_block(comp.sha256.hex(), i), encode_block(i, parsed.payload(comp)))
        for comp in parsed.components
        if comp.sha256.hex() not in live  # another live bundle already carries it: its blocks are retained
        for i in range(block_count(comp.length))
    ]
    sent = outbox.retained(blocks, "block")
    outbox.retained([(topics.bundle_meta(row.digest), parsed.meta_bytes)], "meta")
    row.status = "published"
    session.add(row)
    outbox.stamp()
    log.info("published bundle %s (%d blocks)", row.bundle_id, sent)
    return sent


def retire_bundle(session: Session, outbox: Outbox, row: Bundle) -> int:
    """Clear the meta and every block no other live bundle uses; returns the blocks cleared. Marks the row
    retired in `session`; the caller commits."""
    cleared = 0
    if row.status == "published":
        live = live_blob_hashes(session, exclude=row.bundle_id)
        outbox.retained([(topics.bundle_meta(row.digest), b"")], "meta")
        cleared = outbox.retained(
            [
                (topics.blob_block(c["sha256"], i), b"")
                for c in row.components
                if c["sha256"] not in live
                for i in range(block_count(int(c["length"])))
            ],
            "block",
        )
        outbox.stamp()
    row.status = "retired"
    session.add(row)
    return cleared


def desired_payload(session: Session, dev: Device) -> bytes:
    """The device's retained desired state from its database row (empty: none)."""
    if dev.desired_bundle is None:
        return b""
    b = session.get(Bundle, dev.desired_bundle)
    if b is None:
        raise ValueError(f"device {dev.id} desires unknown bundle {dev.desired_bundle}")
    rb = session.get(Bundle, dev.rollback_bundle) if dev.rollback_bundle else None
    return encode_desired(
        dev.desired_seq,
        bytes.fromhex(b.digest),
        b.size,
        rollback=dev.desired_rollback,
        rollback_digest=bytes.fromhex(rb.digest) if rb is not None else None,
    )


DESIRED_CHUNK = 200  # devices whose rows one publishing transaction locks


def publish_desired(session: Session, outbox: Outbox, device_ids: Iterable[str]) -> int:
    """Publish each device's committed desired state and record that the broker has it; -> devices published.

    Each chunk is one transaction that locks the devices' rows, publishes their states, waits for the broker's
    acknowledgements and records them: two replicas publishing the same device take turns, so the broker's
    retained copy is the newest committed one. Commits after each chunk. If the broker cannot take them
    (RuntimeError, LinkError is one), the chunk's records roll back and the devices stay owed (`owed`).
    Idempotent: the device ignores a (desired_seq, digest) it already has."""
    ids = sorted(set(device_ids))
    done = 0
    for i in range(0, len(ids), DESIRED_CHUNK):
        chunk = ids[i : i + DESIRED_CHUNK]
        try:
            rows = list(session.exec(select(Device).where(col(Device.id).in_(chunk)).with_for_update()))
            _held = _bundles_of(session, rows)
            outbox.retained([(topics.desired(d.id), desired_payload(session, d)) for d in rows], "desired")
            for d in rows:
                d.desired_published_seq = d.desired_seq
                session.add(d)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        outbox.stamp()
        done += len(rows)
    return done


def _bundles_of(session: Session, rows: list[Device]) -> list[Bundle]:
    """The bundles these devices desire or would roll back to, read with one query. The caller holds the list
    while it builds their payloads: the session's identity map keeps unchanged rows by weak reference only, and
    desired_payload's Session.get would otherwise read a bundle once per device."""
    names = sorted({n for d in rows for n in (d.desired_bundle, d.rollback_bundle) if n is not None})
    return list(session.exec(select(Bundle).where(col(Bundle.bundle_id).in_(names)))) if names else []


def owed(session: Session, limit: int = 1000) -> list[str]:
    """Devices whose committed desired state the broker has not acknowledged (ix_device_desired_owed)."""
    q = select(Device.id).where(col(Device.desired_seq) > col(Device.desired_published_seq))
    return list(session.exec(q.order_by(col(Device.id)).limit(limit)))


def republish(session: Session, outbox: Outbox, bundle_dir: Path) -> tuple[int, int]:
    """At startup or after the broker lost retained messages: every published bundle's blocks and meta again
    (the same payloads again change nothing), the bundle of each active rollout that has assigned devices,
    then every device's desired state from the database. Commits; returns (bundles, devices)."""
    published = list(session.exec(select(Bundle).where(Bundle.status == "published")))
    for b in published:
        publish_bundle(session, outbox, bundle_dir, b, again=True)
    for ro in session.exec(select(Rollout).where(col(Rollout.state).in_(ACTIVE))):
        b = session.get(Bundle, ro.bundle_id)
        started = session.exec(
            select(RolloutDevice.device_id).where(RolloutDevice.rollout_id == ro.id, RolloutDevice.status != "pending")
        ).first()
        if b is not None and b.status == "stored" and started is not None:
            publish_bundle(session, outbox, bundle_dir, b)
    session.commit()  # bundles that went from stored to published
    devs = list(session.exec(select(Device.id).where(Device.desired_seq > 0)))
    return (len(published), publish_desired(session, outbox, devs))
