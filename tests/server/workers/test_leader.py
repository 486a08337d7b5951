"""One rollout engine among replicas (PostgreSQL advisory lock); SQLite always leads."""

from __future__ import annotations

from sqlalchemy import Engine

from tinyfleet.server.db import migrate
from tinyfleet.server.db.engine import make_engine
from tinyfleet.server.workers.leader import LeaderLock


def test_only_one_replica_leads_until_it_goes(engine: Engine, db_url: str) -> None:
    migrate.upgrade(engine)
    other = make_engine(db_url)
    a, b = LeaderLock(engine), LeaderLock(other)
    try:
        assert a.held()
        if engine.dialect.name == "postgresql":
            assert not b.held() and a.held()
            a.release()
            assert b.held() and not a.held()
        else:
            assert b.held()  # one server per SQLite file: no election
    finally:
        a.release()
        b.release()
        other.dispose()
