"""Which ingest partitions (protocol/partitions.py) this replica serves, through PostgreSQL advisory locks.

Every replica holds a member lock (the first free number in its key space) and, for each slot it serves, that
slot's lock, all on one connection of its own. Once a second (`interval_s`) it lists the members from
`pg_locks`, computes its share (`partitions.assign`), closes the sessions of the slots it no longer should
serve and then unlocks them, and locks and connects the free slots of its share. A replica that dies loses
its connection and with it every lock: the others see it gone at their next step and take its slots, whose
broker sessions still hold every message it had not acknowledged. A replica whose lock connection fails
closes its slot sessions at once, before another one can take them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import Connection, Engine, text

from tinyfleet.protocol import partitions

log = logging.getLogger("tinyfleet.server.ingest_slots")

_MEMBER_NS = "(hashtext('tinyfleet-ingest-member:' || current_schema()))"
_SLOT_NS = "(hashtext('tinyfleet-ingest-slot:' || current_schema()))"
_MEMBERS = text(
    f"SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND granted "
    f"AND classid::bigint = ({_MEMBER_NS}::bigint & 4294967295)"
)
MAX_MEMBERS = 1024


class SlotSession(Protocol):
    """What the worker needs of one slot's broker session (a connected MqttLink)."""

    def close(self) -> None: ...


class IngestSlots:
    def __init__(self, engine: Engine, slots: int, open_slot: Callable[[int], SlotSession],
                 interval_s: float = 1.0) -> None:  # fmt: skip
        partitions.check_slots(slots)
        if engine.dialect.name != "postgresql":
            raise ValueError("ingest slots need PostgreSQL (their leases are advisory locks)")
        self.engine, self.slots, self.open_slot, self.interval_s = engine, slots, open_slot, interval_s
        self.held: dict[int, SlotSession] = {}
        self.member: int | None = None
        self._conn: Connection | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.step()
        self._thread = threading.Thread(target=self._run, name="tinyfleet-ingest-slots", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.step()

    def step(self) -> None:
        try:
            self._step()
        except Exception as exc:  # the lock connection failed: nothing held any more
            log.warning("ingest slots: lost the lease connection (%s); closing %d slot session(s)", exc,
                        len(self.held))  # fmt: skip
            self._drop_all()

    def _step(self) -> None:
        conn = self._connection()
        if self.member is None:
            for n in range(MAX_MEMBERS):
                if conn.execute(text(f"SELECT pg_try_advisory_lock({_MEMBER_NS}, :n)"), {"n": n}).scalar():
                    self.member = n
                    break
            else:
                raise RuntimeError(f"more than {MAX_MEMBERS} replicas")
        members = [int(m) for m in conn.execute(_MEMBERS).scalars()]
        want = partitions.assign(members, self.member, self.slots)
        for slot in sorted(set(self.held) - want):
            self.held.pop(slot).close()  # close the session first: its next holder must not be kicked
            conn.execute(text(f"SELECT pg_advisory_unlock({_SLOT_NS}, :k)"), {"k": slot})
            log.info("ingest slot %d handed over", slot)
        for slot in sorted(want - set(self.held)):
            if conn.execute(text(f"SELECT pg_try_advisory_lock({_SLOT_NS}, :k)"), {"k": slot}).scalar():
                try:
                    self.held[slot] = self.open_slot(slot)
                except Exception:
                    conn.execute(text(f"SELECT pg_advisory_unlock({_SLOT_NS}, :k)"), {"k": slot})
                    raise
                log.info("ingest slot %d taken (member %d of %d)", slot, self.member, len(members))
        conn.commit()

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self.engine.connect()
        else:
            self._conn.execute(text("SELECT 1"))
        return self._conn

    def _drop_all(self) -> None:
        for session in self.held.values():
            try:
                session.close()
            except Exception:
                log.exception("closing an ingest slot session failed")
        self.held.clear()
        self.member = None
        if self._conn is not None:
            try:
                self._conn.invalidate()  # a pooled connection would keep the session-level locks
                self._conn.close()
            except Exception:
                pass
            self._conn = None

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self._drop_all()
