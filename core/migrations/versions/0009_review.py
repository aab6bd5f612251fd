"""PR review: cached reviews by diff hash, their comments, and suggestions dismissed per repository (owned by
core.review).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_run",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("cache_key", sa.String(64), nullable=False),
        sa.Column("diff_hash", sa.String(64), nullable=False),
        sa.Column("repo_key", sa.String(500), nullable=False),
        sa.Column("model_key", sa.String(300), nullable=False),
        sa.Column("engine_version", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("user", sa.String(255), nullable=True),
        sa.Column("verdict", sa.String(24), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("added_lines", sa.Integer(), nullable=False),
        sa.Column("tokens_in", sa.Integer(), nullable=False),
        sa.Column("tokens_out", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("wall_ms", sa.Float(), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=False),
    )
    op.create_index("ux_review_run_cache_key", "review_run", ["cache_key"], unique=True)
    op.create_index("ix_review_run_diff_hash", "review_run", ["diff_hash"])
    op.create_index("ix_review_run_created_at", "review_run", ["created_at"])
    op.create_table(
        "review_comment",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("review_id", sa.Integer(), sa.ForeignKey("review_run.id"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(1000), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("suggestion", sa.Text(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("specificity", sa.Float(), nullable=False),
        sa.Column("rule", sa.String(300), nullable=False),
        sa.Column("fingerprint", sa.String(32), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("also_at", sa.Text(), nullable=False),
    )
    op.create_index("ix_review_comment_review_id", "review_comment", ["review_id"])
    op.create_table(
        "review_decision",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("repo_key", sa.String(500), nullable=False),
        sa.Column("fingerprint", sa.String(32), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("path", sa.String(1000), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("user", sa.String(255), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ux_review_decision_repo_fingerprint", "review_decision", ["repo_key", "fingerprint"],
                    unique=True)


def downgrade() -> None:
    op.drop_index("ux_review_decision_repo_fingerprint", table_name="review_decision")
    op.drop_table("review_decision")
    op.drop_index("ix_review_comment_review_id", table_name="review_comment")
    op.drop_table("review_comment")
    op.drop_index("ix_review_run_created_at", table_name="review_run")
    op.drop_index("ix_review_run_diff_hash", table_name="review_run")
    op.drop_index("ux_review_run_cache_key", table_name="review_run")
    op.drop_table("review_run")
