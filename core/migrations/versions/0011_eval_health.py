"""Eval health: the agent branch of each eval result, rubric version and labeller of collected cases, reruns
(investigations), model lifecycle and migration reports, re-label audits and decay reports. Background work keeps
its progress in these rows so every server process sees it.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("eval_result") as batch:
        batch.add_column(sa.Column("branch", sa.String(48), nullable=True))
    with op.batch_alter_table("eval_case") as batch:
        batch.add_column(sa.Column("rubric_version", sa.String(32), nullable=True))
        batch.add_column(sa.Column("labelled_by", sa.String(255), nullable=True))
    op.create_table(
        "investigation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("request_id", sa.String(40), nullable=False),
        sa.Column("hypothesis", sa.Text(), nullable=False),
        sa.Column("factor", sa.String(24), nullable=False),
        sa.Column("variants", sa.Text(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("estimate_usd", sa.Float(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("tokens_in", sa.Integer(), nullable=False),
        sa.Column("tokens_out", sa.Integer(), nullable=False),
        sa.Column("outcomes", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("eval_case_id", sa.Integer(), nullable=True),
    )
    op.create_index("ix_investigation_request", "investigation", ["request_id"])
    op.create_table(
        "model_lifecycle",
        sa.Column("model", sa.String(128), primary_key=True),
        sa.Column("deprecation_date", sa.String(10), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("replacement", sa.String(128), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "migration_report",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("model_from", sa.String(128), nullable=False),
        sa.Column("model_to", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("suites", sa.Text(), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_migration_report_created", "migration_report", ["created_at"])
    op.create_table(
        "relabel_audit",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("suite", sa.String(64), nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("rubric_version", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
    )
    op.create_table(
        "relabel_item",
        sa.Column("audit_id", sa.Integer(), primary_key=True),
        sa.Column("case_id", sa.String(128), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("input_text", sa.Text(), nullable=False),
        sa.Column("old_label", sa.String(128), nullable=False),
        sa.Column("old_labelled_by", sa.String(255), nullable=True),
        sa.Column("old_rubric_version", sa.String(32), nullable=True),
        sa.Column("new_label", sa.String(128), nullable=True),
        sa.Column("labelled_by", sa.String(255), nullable=True),
        sa.Column("labelled_at", sa.Float(), nullable=True),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "decay_report",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("feature", sa.String(64), nullable=False),
        sa.Column("days", sa.Float(), nullable=False),
        sa.Column("distance", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
    )
    op.create_index("ix_decay_report_feature_created", "decay_report", ["feature", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_decay_report_feature_created", "decay_report")
    op.drop_table("decay_report")
    op.drop_table("relabel_item")
    op.drop_table("relabel_audit")
    op.drop_index("ix_migration_report_created", "migration_report")
    op.drop_table("migration_report")
    op.drop_table("model_lifecycle")
    op.drop_index("ix_investigation_request", "investigation")
    op.drop_table("investigation")
    with op.batch_alter_table("eval_case") as batch:
        batch.drop_column("labelled_by")
        batch.drop_column("rubric_version")
    with op.batch_alter_table("eval_result") as batch:
        batch.drop_column("branch")
