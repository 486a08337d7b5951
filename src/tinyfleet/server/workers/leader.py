"""One rollout engine among replicas: a PostgreSQL session-level advisory lock, held on its own connection.

On SQLite there is one server per database file, so this replica always leads. On PostgreSQL the lock key
is derived from the schema name, so fleets in different schemas of one database do not block each other.
If the lock's connection dies, the lock is released and another replica takes over at its next step.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, Engine, text

log = logging.getLogger("tinyfleet.server.leader")

_KEY = "hashtext('tinyfleet-rollout-engine:' || current_schema())"
_TRY = text(f"SELECT pg_try_advisory_lock({_KEY})")
_UNLOCK = text(f"SELECT pg_advisory_unlock({_KEY})")


class LeaderLock:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None

    def held(self) -> bool:
        if self.engine.dialect.name != "postgresql":
            return True
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
                return True
            except Exception:  # the connection died, and the lock with it
                log.warning("lost the rollout-engine lock's connection")
                self._conn = None
        conn = self.engine.connect()
        if conn.execute(_TRY).scalar():
            conn.commit()
            self._conn = conn
            log.info("this replica now runs the rollout engine")
            return True
        conn.rollback()
        conn.close()
        return False

    def release(self) -> None:
        if self._conn is not None:
            # Unlock first: a closed connection frees the lock only once its backend has exited, after this
            # returns, so another replica asking at once would still find it taken.
            try:
                self._conn.execute(_UNLOCK)
                self._conn.commit()
            except Exception:  # the connection is gone already, and the lock with it
                pass
            # invalidate, not just close: a pooled connection would keep the session-level lock
            self._conn.invalidate()
            self._conn.close()
            self._conn = None
