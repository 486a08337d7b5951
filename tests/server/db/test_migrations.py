"""Alembic migrations on both databases, and the refusal to start on an unknown revision."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, inspect, text
from sqlmodel import SQLModel

from tinyfleet.server.db import models  # noqa: F401
from tinyfleet.server.db.migrate import (
    UnknownRevisionError,
    check_revision,
    current_revision,
    head_revision,
    upgrade,
)


def test_upgrade_creates_every_table_at_head(engine: Engine) -> None:
    assert current_revision(engine) is None
    assert upgrade(engine) == head_revision()
    assert current_revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables
    # a second upgrade is a no-op
    assert upgrade(engine) == head_revision()


def test_migrated_schema_matches_models(engine: Engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def test_unknown_revision_is_refused_with_a_clear_message(engine: Engine) -> None:
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff_from_the_future'"))
    with pytest.raises(UnknownRevisionError, match="'ffff_from_the_future', which this server does not know"):
        check_revision(engine)
    with pytest.raises(UnknownRevisionError):
        upgrade(engine)


def test_upgrade_keeps_existing_rows(engine: Engine) -> None:
    from alembic import command

    from tinyfleet.server.db.migrate import alembic_config

    command.upgrade(alembic_config(engine), "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO device (id, hardware_class, tags, created_at, broker_password_hash, online, "
                "last_report_seq) VALUES ('d1', 'stm32l4', '{}', 1.0, 'h', false, -1)"
            )
        )
    upgrade(engine)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT id, desired_seq, report_gaps FROM device")).one()
    assert tuple(row) == ("d1", 0, 0)
