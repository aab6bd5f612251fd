"""Document search: the document registry (content hash, access metadata) and the retrieval audit log (owned by
core.search).

Revision ID: 0008
Revises: 0007
"""

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
