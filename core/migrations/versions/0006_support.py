"""Support chat: conversations, messages, handoffs, CSAT and the demo company's accounts (owned by core.support).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "support_plan",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("monthly_usd", sa.Float(), nullable=False),
        sa.Column("summary", sa.String(300), nullable=False),
    )
    op.create_table(
        "support_account",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("email", sa.String(255), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("plan_id", sa.String(16), sa.ForeignKey("support_plan.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("email_verified", sa.Boolean(), nullable=False),
        sa.Column("verification_sent_at", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "support_order",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("account_id", sa.String(16), sa.ForeignKey("support_account.id"), nullable=False),
        sa.Column("item", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("total_usd", sa.Float(), nullable=False),
        sa.Column("carrier", sa.String(32), nullable=True),
        sa.Column("tracking", sa.String(64), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("shipped_at", sa.Float(), nullable=True),
        sa.Column("delivered_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_support_order_account_id", "support_order", ["account_id"])
    op.create_table(
        "support_invoice",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("account_id", sa.String(16), sa.ForeignKey("support_account.id"), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("amount_usd", sa.Float(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("issued_at", sa.Float(), nullable=False),
        sa.Column("due_at", sa.Float(), nullable=False),
        sa.Column("paid_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_support_invoice_account_id", "support_invoice", ["account_id"])
    op.create_table(
        "support_conversation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("customer_sub", sa.String(255), nullable=False),
        sa.Column("account_id", sa.String(16), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("intent", sa.String(32), nullable=True),
        sa.Column("route", sa.String(32), nullable=True),
        sa.Column("handled_by", sa.String(16), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("bot_confidence", sa.Float(), nullable=True),
        sa.Column("rephrase_asked", sa.Boolean(), nullable=False),
        sa.Column("pending_action", sa.Text(), nullable=True),
        sa.Column("priority", sa.String(8), nullable=True),
        sa.Column("assigned_to", sa.String(255), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("escalated_at", sa.Float(), nullable=True),
        sa.Column("resolved_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_support_conversation_customer", "support_conversation", ["customer_sub", "created_at"])
    op.create_index("ix_support_conversation_status", "support_conversation", ["status", "escalated_at"])
    op.create_table(
        "support_message",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("conversation_id", sa.Integer(), sa.ForeignKey("support_conversation.id"), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("author", sa.String(255), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("meta", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_support_message_conversation", "support_message", ["conversation_id", "id"])
    op.create_table(
        "support_handoff",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("conversation_id", sa.Integer(), sa.ForeignKey("support_conversation.id"), nullable=False,
                  unique=True),
        sa.Column("reason", sa.String(300), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("summary_source", sa.String(16), nullable=False),
        sa.Column("entities", sa.Text(), nullable=False),
        sa.Column("intent", sa.String(32), nullable=True),
        sa.Column("bot_confidence", sa.Float(), nullable=True),
        sa.Column("suggested_resolution", sa.Text(), nullable=False),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "support_tool_run",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("account_id", sa.String(16), nullable=True),
        sa.Column("tool", sa.String(32), nullable=False),
        sa.Column("args", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_support_tool_run_conversation", "support_tool_run", ["conversation_id"])
    op.create_table(
        "support_csat",
        sa.Column("conversation_id", sa.Integer(), sa.ForeignKey("support_conversation.id"), primary_key=True),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    for table in ("support_csat", "support_tool_run", "support_handoff", "support_message", "support_conversation",
                  "support_invoice", "support_order", "support_account", "support_plan"):
        op.drop_table(table)
