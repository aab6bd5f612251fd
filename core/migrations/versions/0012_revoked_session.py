"""Signed-out UI sessions: Streamlit's cookie stays validly signed after sign-out, so sign-out records the session
here and every route that accepts the cookie refuses a revoked one.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revoked_session",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("sub", sa.String(255), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_revoked_session_expires_at", "revoked_session", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_revoked_session_expires_at", "revoked_session")
    op.drop_table("revoked_session")
