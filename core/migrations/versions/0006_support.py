"""Support chat: conversations, messages, handoffs, CSAT and the demo company's accounts (owned by core.support).

Revision ID: 0006
Revises: 0005
"""

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
