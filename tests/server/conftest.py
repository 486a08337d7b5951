"""Fixtures for server tests: a fresh database on SQLite and on the local PostgreSQL for every test.

PostgreSQL is `TINYFLEET_TEST_PG` (default postgresql://postgres@127.0.0.1:5432/test). Each test gets its own
schema in that database, dropped afterwards, so engineers sharing the server do not collide. If PostgreSQL
is unreachable the PostgreSQL variants are skipped with the reason shown by `pytest -ra`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from tinyfleet.server.db.engine import make_engine, normalize_url

PG_URL = os.environ.get("TINYFLEET_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_unreachable_reason() -> str | None:
    try:
        eng = create_engine(normalize_url(PG_URL), connect_args={"connect_timeout": 3})
        with eng.connect() as conn:
            conn.execute(text("select 1"))
        eng.dispose()
    except Exception as exc:  # any failure to connect means: skip, and say why
        return f"PostgreSQL at {PG_URL} unreachable: {str(exc).splitlines()[0]}"
    return None


_PG_REASON = _pg_unreachable_reason()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fleet.db'}"
        return
    if _PG_REASON:
        pytest.skip(_PG_REASON)
    schema = f"tfs_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalize_url(PG_URL))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()
