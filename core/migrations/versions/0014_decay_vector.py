"""Snapshot eval decay: a cache of input embeddings, so a decay report encodes only inputs no earlier report (in any
server process) has seen; 2,000 production inputs would otherwise cost seconds to tens of seconds of CPU each time.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decay_vector",
        sa.Column("key", sa.String(32), primary_key=True),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_decay_vector_created", "decay_vector", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_decay_vector_created", "decay_vector")
    op.drop_table("decay_vector")
