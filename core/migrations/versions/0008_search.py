"""Document search: the document registry (content hash, access metadata) and the retrieval audit log (owned by
core.search).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_document",
        sa.Column("doc_id", sa.String(255), primary_key=True),
        sa.Column("root", sa.String(1000), nullable=False),
        sa.Column("path", sa.String(1000), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("url", sa.String(1000), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("access_groups", sa.Text(), nullable=False),
        sa.Column("clearance_level", sa.Integer(), nullable=False),
        sa.Column("file_hash", sa.String(64), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("access_edited", sa.Boolean(), nullable=False),
        sa.Column("indexed_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_search_document_root", "search_document", ["root"])

    op.create_table(
        "search_audit",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("filter_expr", sa.Text(), nullable=False),
        sa.Column("doc_ids", sa.Text(), nullable=False),
        sa.Column("chunk_ids", sa.Text(), nullable=False),
        sa.Column("results", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
    )
    op.create_index("ix_search_audit_created_at", "search_audit", ["created_at"])
    op.create_index("ix_search_audit_user", "search_audit", ["user"])


def downgrade() -> None:
    op.drop_index("ix_search_audit_user", table_name="search_audit")
    op.drop_index("ix_search_audit_created_at", table_name="search_audit")
    op.drop_table("search_audit")
    op.drop_index("ix_search_document_root", table_name="search_document")
    op.drop_table("search_document")
