"""Code completion: per-suggestion telemetry (owned by core.completion).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "completion_event",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("suggestion_id", sa.String(32), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("user", sa.String(255), nullable=True),
        sa.Column("customer", sa.String(128), nullable=True),
        sa.Column("path", sa.String(300), nullable=False),
        sa.Column("language", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("cache_hit", sa.Boolean(), nullable=False),
        sa.Column("cancelled", sa.Boolean(), nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("speculative", sa.Boolean(), nullable=False),
        sa.Column("speculative_hit", sa.Boolean(), nullable=False),
        sa.Column("perceived_ms", sa.Float(), nullable=True),
        sa.Column("model_ms", sa.Float(), nullable=True),
        sa.Column("debounce_ms", sa.Float(), nullable=False),
        sa.Column("tokens_out", sa.Integer(), nullable=False),
        sa.Column("chars", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(40), nullable=True),
    )
    op.create_index("ix_completion_event_created_at", "completion_event", ["created_at"])
    op.create_index("ix_completion_event_suggestion_id", "completion_event", ["suggestion_id"])


def downgrade() -> None:
    op.drop_index("ix_completion_event_suggestion_id", table_name="completion_event")
    op.drop_index("ix_completion_event_created_at", table_name="completion_event")
    op.drop_table("completion_event")
