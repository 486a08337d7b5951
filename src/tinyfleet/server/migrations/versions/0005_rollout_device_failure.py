"""rollouts: each device's failure reason code, kept after it is rolled back

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rolloutdevice", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failure", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rolloutdevice", schema=None) as batch_op:
        batch_op.drop_column("failure")
