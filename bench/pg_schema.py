"""A fresh schema in the benchmarks' PostgreSQL (TINYFLEET_BENCH_PG, default the local `test` database), dropped
on exit: a server run against it starts from an empty database and leaves nothing behind."""

from __future__ import annotations

import os
import uuid

from sqlalchemy import create_engine, text

from tinyfleet.server.db.engine import normalize_url

PG_URL = os.environ.get("TINYFLEET_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


class PgSchema:
    def __init__(self, prefix: str = "tfbench") -> None:
        self.name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self.engine = create_engine(normalize_url(PG_URL), connect_args={"connect_timeout": 5})
        sep = "&" if "?" in PG_URL else "?"
        self.url = f"{PG_URL}{sep}options=-csearch_path%3D{self.name}"  # the server's DATABASE_URL

    def __enter__(self) -> PgSchema:
        with self.engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{self.name}"'))
        return self

    def __exit__(self, *_exc: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{self.name}" CASCADE'))
        self.engine.dispose()
