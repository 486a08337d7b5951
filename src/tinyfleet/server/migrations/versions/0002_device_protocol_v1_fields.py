"""device protocol v1 fields

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("device", schema=None) as batch_op:
        batch_op.add_column(sa.Column("desired_seq", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("desired_rollback", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("rollback_bundle", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column("running_digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column("security_counter", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("image_state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column("report_gaps", sa.Integer(), nullable=False, server_default="0"))
        batch_op.alter_column(
            "last_report_seq", existing_type=sa.INTEGER(), type_=sa.BigInteger(), existing_nullable=False
        )

    with op.batch_alter_table("devicereport", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.INTEGER(), type_=sa.BigInteger(), existing_nullable=False)

    with op.batch_alter_table("rollout", schema=None) as batch_op:
        batch_op.add_column(sa.Column("waiting_for", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True))

    with op.batch_alter_table("rolloutdevice", schema=None) as batch_op:
        batch_op.add_column(sa.Column("desired_seq", sa.Integer(), nullable=True))

    with op.batch_alter_table("telemetryaggregate", schema=None) as batch_op:
        batch_op.add_column(sa.Column("inferences", sa.Integer(), nullable=False, server_default="0"))

    with op.batch_alter_table("telemetryrecord", schema=None) as batch_op:
        batch_op.add_column(sa.Column("inferences", sa.Integer(), nullable=False, server_default="0"))
        batch_op.alter_column("seq", existing_type=sa.INTEGER(), type_=sa.BigInteger(), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("telemetryrecord", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), type_=sa.INTEGER(), existing_nullable=False)
        batch_op.drop_column("inferences")

    with op.batch_alter_table("telemetryaggregate", schema=None) as batch_op:
        batch_op.drop_column("inferences")

    with op.batch_alter_table("rolloutdevice", schema=None) as batch_op:
        batch_op.drop_column("rollback_bundle")
        batch_op.drop_column("desired_rollback")
        batch_op.drop_column("desired_seq")

    with op.batch_alter_table("rollout", schema=None) as batch_op:
        batch_op.drop_column("waiting_for")

    with op.batch_alter_table("devicereport", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), type_=sa.INTEGER(), existing_nullable=False)

    with op.batch_alter_table("device", schema=None) as batch_op:
        batch_op.alter_column(
            "last_report_seq", existing_type=sa.BigInteger(), type_=sa.INTEGER(), existing_nullable=False
        )
        batch_op.drop_column("report_gaps")
        batch_op.drop_column("image_state")
        batch_op.drop_column("security_counter")
        batch_op.drop_column("running_digest")
        batch_op.drop_column("rollback_bundle")
        batch_op.drop_column("desired_rollback")
        batch_op.drop_column("desired_seq")
