"""Request-log safety: metadata kept as validated JSON, a quarantine for rows the database refused, and budget
holds as SQL rows (released in the transaction that writes the call's cost, shared by every replica).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("request_log", sa.Column("metadata_json", sa.Text(), nullable=True))
    op.create_table(
        "request_log_quarantine",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("quarantined_at", sa.Float(), nullable=False),
        sa.Column("request_id", sa.String(40), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("row_json", sa.Text(), nullable=False),
    )
    op.create_index("ix_request_log_quarantine_at", "request_log_quarantine", ["quarantined_at"])
    op.create_table(
        "budget_hold",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("amount_usd", sa.Float(), nullable=False),
        sa.Column("request_id", sa.String(40), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_budget_hold_scope_key", "budget_hold", ["scope", "key", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_budget_hold_scope_key", "budget_hold")
    op.drop_table("budget_hold")
    op.drop_index("ix_request_log_quarantine_at", "request_log_quarantine")
    op.drop_table("request_log_quarantine")
    with op.batch_alter_table("request_log") as batch:
        batch.drop_column("metadata_json")
