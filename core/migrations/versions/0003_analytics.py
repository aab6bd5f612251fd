"""Capability-drift measures on the breakdown rollup: JSON asked / valid and empty outputs.

Rows already rolled up before this revision count as zero for the new measures.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_COLUMNS = ("json_asked", "json_valid", "empty_outputs")


def upgrade() -> None:
    for name in _COLUMNS:
        op.add_column("log_rollup_dims", sa.Column(name, sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("log_rollup_dims") as batch:
        for name in reversed(_COLUMNS):
            batch.drop_column(name)
