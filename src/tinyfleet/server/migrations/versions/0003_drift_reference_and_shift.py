"""drift: each device's reference window and the newest window's shift from it

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("driftscore", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reference", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("shift", sa.Float(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("shift_alert", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("driftscore", schema=None) as batch_op:
        batch_op.drop_column("shift_alert")
        batch_op.drop_column("shift")
        batch_op.drop_column("reference")
