"""Review queue (sampled calls marked good/bad), eval cases from reviews and escalations, eval runs and results.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_item",
        sa.Column("request_id", sa.String(40), primary_key=True),
        sa.Column("sampled_at", sa.Float(), nullable=False),
        sa.Column("feature", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("prompt_version", sa.String(32), nullable=True),
        sa.Column("verdict", sa.String(8), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("reviewer", sa.String(255), nullable=True),
        sa.Column("reviewed_at", sa.Float(), nullable=True),
        sa.Column("eval_case_id", sa.Integer(), nullable=True),
    )
    op.create_index("ix_review_item_verdict_sampled", "review_item", ["verdict", "sampled_at"])

    op.create_table(
        "eval_case",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("suite", sa.String(64), nullable=False),
        sa.Column("input_text", sa.Text(), nullable=False),
        sa.Column("expected", sa.Text(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("source_ref", sa.String(128), nullable=True),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_eval_case_suite", "eval_case", ["suite"])

    op.create_table(
        "eval_run",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("suite", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128), nullable=True),
        sa.Column("prompt_version", sa.String(64), nullable=True),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cases", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("baseline_run_id", sa.Integer(), nullable=True),
        sa.Column("baseline_score", sa.Float(), nullable=True),
        sa.Column("regressions", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("latency_p50_ms", sa.Float(), nullable=True),
        sa.Column("latency_p95_ms", sa.Float(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("started_by", sa.String(255), nullable=True),
    )
    op.create_index("ix_eval_run_suite_started", "eval_run", ["suite", "started_at"])

    op.create_table(
        "eval_result",
        sa.Column("run_id", sa.Integer(), primary_key=True),
        sa.Column("case_id", sa.String(128), primary_key=True),
        sa.Column("segment", sa.String(64), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("input_text", sa.Text(), nullable=False),
        sa.Column("expected", sa.Text(), nullable=False),
        sa.Column("output", sa.Text(), nullable=False),
        sa.Column("scores", sa.Text(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("eval_result")
    op.drop_index("ix_eval_run_suite_started", "eval_run")
    op.drop_table("eval_run")
    op.drop_index("ix_eval_case_suite", "eval_case")
    op.drop_table("eval_case")
    op.drop_index("ix_review_item_verdict_sampled", "review_item")
    op.drop_table("review_item")
