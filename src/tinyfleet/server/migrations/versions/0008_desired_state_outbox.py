"""devices: the desired_seq the broker last acknowledged, so a desired state committed by a replica that died
before publishing it is published by the next one

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

OWED = "desired_seq > desired_published_seq"


def upgrade() -> None:
    with op.batch_alter_table("device", schema=None) as batch_op:
        batch_op.add_column(sa.Column("desired_published_seq", sa.Integer(), nullable=False, server_default="0"))
    # Every existing desired state counts as published: the server republishes them all when it starts.
    op.execute("UPDATE device SET desired_published_seq = desired_seq")
    op.create_index("ix_device_desired_owed", "device", ["id"], postgresql_where=sa.text(OWED),
                    sqlite_where=sa.text(OWED))  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_device_desired_owed", table_name="device")
    with op.batch_alter_table("device", schema=None) as batch_op:
        batch_op.drop_column("desired_published_seq")
