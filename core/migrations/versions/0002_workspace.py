"""Workspace members, documents, monthly AI usage and credit reservations.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workspace_member",
        sa.Column("workspace_id", sa.String(64), sa.ForeignKey("workspace.id"), primary_key=True),
        sa.Column("user_sub", sa.String(255), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_workspace_member_user_sub", "workspace_member", ["user_sub"])

    op.create_table(
        "workspace_document",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("workspace_id", sa.String(64), sa.ForeignKey("workspace.id"), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_workspace_document_ws_updated", "workspace_document", ["workspace_id", "updated_at"])

    op.create_table(
        "workspace_usage",
        sa.Column("workspace_id", sa.String(64), sa.ForeignKey("workspace.id"), primary_key=True),
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("used", sa.Integer(), nullable=False),
        sqlite_with_rowid=False,
    )

    op.create_table(
        "workspace_credit",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("workspace_id", sa.String(64), sa.ForeignKey("workspace.id"), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("user_sub", sa.String(255), nullable=False),
        sa.Column("task", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("request_id", sa.String(40), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("settled_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_workspace_credit_ws_month", "workspace_credit", ["workspace_id", "month"])


def downgrade() -> None:
    op.drop_table("workspace_credit")
    op.drop_table("workspace_usage")
    op.drop_table("workspace_document")
    op.drop_table("workspace_member")
