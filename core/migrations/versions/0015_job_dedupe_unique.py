"""One active job per (kind, dedupe_key): a partial unique index, so two replicas submitting the same sync at the
same moment cannot both insert a queued job (the check-then-insert in `insert_job` alone let both through).

Revision ID: 0015
Revises: 0014
"""

import time

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_ACTIVE = "status IN ('queued', 'running')"


def upgrade() -> None:
    # Duplicates that slipped in before the index would make it fail to build: keep the newest, fail the rest.
    conn = op.get_bind()
    rows = conn.execute(sa.text(f"SELECT id, kind, dedupe_key FROM job WHERE dedupe_key IS NOT NULL AND {_ACTIVE} "
                                "ORDER BY created_at DESC")).all()
    seen: set[tuple[str, str]] = set()
    for job_id, kind, key in rows:
        if (kind, key) in seen:
            conn.execute(sa.text("UPDATE job SET status = 'failed', finished_at = :now, lease_until = NULL, "
                                 "error = 'a duplicate of a newer job with the same key' WHERE id = :id"),
                         {"now": time.time(), "id": job_id})
        seen.add((kind, key))
    op.create_index("ux_job_active_dedupe", "job", ["kind", "dedupe_key"], unique=True,
                    postgresql_where=sa.text(_ACTIVE), sqlite_where=sa.text(_ACTIVE))


def downgrade() -> None:
    op.drop_index("ux_job_active_dedupe", "job")
