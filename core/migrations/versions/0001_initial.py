"""Request log, model prices, workspaces and API keys.

Revision ID: 0001
Revises:
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "request_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("request_id", sa.String(40), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("feature", sa.String(64), nullable=False),
        sa.Column("task", sa.String(64), nullable=False),
        sa.Column("prompt_id", sa.String(128), nullable=True),
        sa.Column("prompt_version", sa.String(32), nullable=True),
        sa.Column("tier", sa.String(32), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("user", sa.String(255), nullable=True),
        sa.Column("customer", sa.String(128), nullable=True),
        sa.Column("input_text", sa.Text(), nullable=True),
        sa.Column("output_text", sa.Text(), nullable=True),
        sa.Column("tokens_in", sa.Integer(), nullable=False),
        sa.Column("tokens_out", sa.Integer(), nullable=False),
        sa.Column("ttft_ms", sa.Float(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("latency_bucket", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("refusal", sa.Boolean(), nullable=False),
        sa.Column("json_valid", sa.Boolean(), nullable=True),
    )
    op.create_index("ix_request_log_created_at", "request_log", ["created_at"])
    op.create_index("ix_request_log_request_id", "request_log", ["request_id"])
    op.create_index("ix_request_log_feature_created", "request_log", ["feature", "created_at"])
    op.create_index("ix_request_log_customer_created", "request_log", ["customer", "created_at"])

    def sums() -> list[sa.Column[Any]]:  # the same measures in every rollup
        return [
            sa.Column("n", sa.Integer(), nullable=False),
            sa.Column("cost_usd", sa.Float(), nullable=False),
            sa.Column("tokens_in", sa.BigInteger(), nullable=False),
            sa.Column("tokens_out", sa.BigInteger(), nullable=False),
            sa.Column("latency_sum", sa.Float(), nullable=False),
            sa.Column("ttft_sum", sa.Float(), nullable=False),
            sa.Column("ttft_n", sa.Integer(), nullable=False),
            sa.Column("refusals", sa.Integer(), nullable=False),
        ]

    op.create_table(
        "log_rollup_time",
        sa.Column("hour", sa.Integer(), primary_key=True),
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("latency_bucket", sa.Integer(), primary_key=True),
        *sums(),
        sqlite_with_rowid=False,  # rows live in primary-key order: range reads by hour touch one b-tree
    )
    op.create_table(
        "log_rollup_dims",
        sa.Column("hour", sa.Integer(), primary_key=True),
        sa.Column("feature", sa.String(64), primary_key=True),
        sa.Column("model", sa.String(128), primary_key=True),
        sa.Column("tier", sa.String(32), primary_key=True),
        sa.Column("prompt_version", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(16), primary_key=True),
        *sums(),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "log_rollup_customer",
        sa.Column("hour", sa.Integer(), primary_key=True),
        sa.Column("customer", sa.String(128), primary_key=True),
        sa.Column("status", sa.String(16), primary_key=True),
        *sums(),
        sqlite_with_rowid=False,
    )

    op.create_table(
        "model_price",
        sa.Column("model", sa.String(128), primary_key=True),
        sa.Column("input_per_mtok", sa.Float(), nullable=False),
        sa.Column("output_per_mtok", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "workspace",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("plan", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("workspace_id", sa.String(64), sa.ForeignKey("workspace.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.Column("last_used_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_api_key_workspace_id", "api_key", ["workspace_id"])


def downgrade() -> None:
    op.drop_table("api_key")
    op.drop_table("workspace")
    op.drop_table("model_price")
    op.drop_table("log_rollup_customer")
    op.drop_table("log_rollup_dims")
    op.drop_table("log_rollup_time")
    op.drop_table("request_log")
