"""rollout history outlives devices: rolloutdevice.device_id no longer references device.id

A deleted device's entries in rollouts stay, naming it, so a rollout's history still reads the same.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# SQLite keeps the constraint unnamed: batch mode names it by this convention to drop it.
_NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        with op.batch_alter_table("rolloutdevice", naming_convention=_NAMING) as batch_op:
            batch_op.drop_constraint("fk_rolloutdevice_device_id_device", type_="foreignkey")
        return
    for fk in sa.inspect(bind).get_foreign_keys("rolloutdevice"):
        if fk["referred_table"] == "device" and fk["name"]:
            op.drop_constraint(fk["name"], "rolloutdevice", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("rolloutdevice", schema=None) as batch_op:
        batch_op.create_foreign_key("fk_rolloutdevice_device_id_device", "device", ["device_id"], ["id"])
