"""Alembic glue: bring a database to the newest revision, refusing one this server does not know."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


class UnknownRevisionError(RuntimeError):
    """The database was migrated by a newer (or foreign) server; starting would corrupt it."""


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def known_revisions() -> set[str]:
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    return {rev.revision for rev in script.walk_revisions()}


def head_revision() -> str:
    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert head is not None, "src/tinyfleet/server/migrations has no revisions"
    return head


def check_revision(engine: Engine) -> str | None:
    """Return the database's revision; raise UnknownRevisionError if no migration here produced it."""
    rev = current_revision(engine)
    if rev is not None and rev not in known_revisions():
        raise UnknownRevisionError(
            f"database is at schema revision {rev!r}, which this server does not know "
            f"(newest known: {head_revision()!r}); run a server version that has this revision"
        )
    return rev


def upgrade(engine: Engine) -> str:
    """Check, then migrate to head. Returns the head revision."""
    check_revision(engine)
    command.upgrade(alembic_config(engine), "head")
    return head_revision()
