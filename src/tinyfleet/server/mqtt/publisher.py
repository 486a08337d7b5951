"""Publishing bundles and desired state (docs/device-protocol.md): blocks, then meta, then desired.

Blocks are retained and addressed by component hash, so a component shared by several live bundles is
published once and cleared only when the last live bundle that carries it is retired.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from sqlmodel import Session, select

from tinyfleet.bundles import parse_bundle
from tinyfleet.protocol import topics
from tinyfleet.protocol.records import block_count, encode_block, encode_desired
from tinyfleet.server.db.models import Bundle, Device
from tinyfleet.server.metrics import Metrics
from tinyfleet.server.mqtt.link import MqttLink
from tinyfleet.server.services.bundles import read_bytes

log = logging.getLogger("tinyfleet.server.publisher")


def live_blob_hashes(session: Session, exclude: str | None = None) -> set[str]:
    out: set[str] = set()
    for b in session.exec(select(Bundle).where(Bundle.status == "published")):
        if b.bundle_id != exclude:
            out.update(c["sha256"] for c in b.components)
    return out


class Publisher:
    def __init__(
        self, link: MqttLink, bundle_dir: Path, metrics: Metrics, after_publish: Callable[[], None] = lambda: None
    ) -> None:
        self.link, self.bundle_dir, self.metrics = link, bundle_dir, metrics
        self._after_publish = after_publish  # the retained guard's stamp (src/tinyfleet/server/mqtt/retained_guard.py)

    def publish_bundle(self, session: Session, row: Bundle, *, again: bool = False) -> int:
        """Publish the bundle's missing blocks and its meta (retained); returns the blocks sent. `again`:
        publish every block and the meta even if already published (the broker may have lost them).
        Marks the row published in `session` without committing: the caller's transaction does (if it rolls
        back, the retained messages stay and publishing again is harmless)."""
        if row.status == "published" and not again:
            return 0
        parsed = parse_bundle(read_bytes(self.bundle_dir, row))
        live = set() if again else live_blob_hashes(session, exclude=row.bundle_id)
        infos = []
        for comp in parsed.components:
            sha = comp.sha256.hex()
            if sha in live:
                continue  # another live bundle already carries this component: its blocks are retained
            payload = parsed.payload(comp)
            for i in range(block_count(comp.length)):
                infos.append(self.link.publish(topics.blob_block(sha, i), encode_block(i, payload), retain=True,
                                               wait=False))  # fmt: skip
        for info in infos:
            info.wait_for_publish(60)
        self.metrics.publishes.labels("block").inc(len(infos))
        self.link.publish(topics.bundle_meta(row.digest), parsed.meta_bytes, retain=True)
        self.metrics.publishes.labels("meta").inc()
        row.status = "published"
        session.add(row)
        self._after_publish()
        log.info("published bundle %s (%d blocks)", row.bundle_id, len(infos))
        return len(infos)

    def retire_bundle(self, session: Session, row: Bundle) -> int:
        """Clear the meta and every block no other live bundle uses; returns the blocks cleared. Marks the row
        retired in `session`; the caller commits."""
        cleared = 0
        if row.status == "published":
            live = live_blob_hashes(session, exclude=row.bundle_id)
            self.link.publish(topics.bundle_meta(row.digest), b"", retain=True)
            infos = []
            for c in row.components:
                if c["sha256"] in live:
                    continue
                for i in range(block_count(int(c["length"]))):
                    infos.append(self.link.publish(topics.blob_block(c["sha256"], i), b"", retain=True, wait=False))
            for info in infos:
                info.wait_for_publish(60)
            cleared = len(infos)
            self._after_publish()
        row.status = "retired"
        session.add(row)
        return cleared

    def publish_desired(self, session: Session, dev: Device) -> None:
        """Publish the device's retained desired state from its database row. Idempotent: the same
        (desired_seq, digest) again is ignored by the device."""
        if dev.desired_bundle is None:
            self.link.publish(topics.desired(dev.id), b"", retain=True)
        else:
            b = session.get(Bundle, dev.desired_bundle)
            if b is None:
                raise ValueError(f"device {dev.id} desires unknown bundle {dev.desired_bundle}")
            rb = session.get(Bundle, dev.rollback_bundle) if dev.rollback_bundle else None
            payload = encode_desired(
                dev.desired_seq,
                bytes.fromhex(b.digest),
                b.size,
                rollback=dev.desired_rollback,
                rollback_digest=bytes.fromhex(rb.digest) if rb is not None else None,
            )
            self.link.publish(topics.desired(dev.id), payload, retain=True)
        self.metrics.publishes.labels("desired").inc()
        self._after_publish()
