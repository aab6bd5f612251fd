"""Demo data for a fresh install: a workspace, an API key written to the data directory, sample traffic."""

from __future__ import annotations

from core.auth import create_api_key, ensure_workspace, list_api_keys
from core.config import get_settings

DEMO_WORKSPACE = "demo"


def seed(traffic_rows: int = 2000) -> dict:
    """Idempotent: re-running keeps the existing key and adds no second batch of traffic."""
    from core.idp import DEV_USERS
    from core.workspace import ensure_member

    settings = get_settings()
    ensure_workspace(DEMO_WORKSPACE, "Demo workspace", plan="free")
    for user in DEV_USERS:  # every demo user shares the demo workspace; the executive and IT admin run it
        ensure_member(DEMO_WORKSPACE, user.sub, "admin" if user.sub.startswith(("erin", "ivan")) else "member")
    key_file = settings.home / "demo_api_key.txt"
    if not key_file.exists() or not any(k.revoked_at is None for k in list_api_keys(DEMO_WORKSPACE)):
        key, _ = create_api_key(DEMO_WORKSPACE, "demo key")
        key_file.write_text(key + "\n")
        key_file.chmod(0o600)
    from core.support import seed_demo_company

    # The support bot's demo company (plans, accounts, orders, invoices, CSAT history). The intent classifier and
    # the knowledge-base embeddings are trained by the server in the background once it is healthy
    # (`services.start_warm_up`), so a fresh `make run` reaches a working app sooner.
    support = seed_demo_company()
    marker = settings.home / ".demo_traffic_seeded"
    added = 0
    if traffic_rows and not marker.exists():
        from core.observe._synthetic import insert_synthetic

        # only configured models, so a fresh install's charts never name a model it does not have
        added = insert_synthetic(traffic_rows, days=7, review_share=settings.annotation_sample_share,
                                 tiers=settings.tiers)
        marker.write_text(str(added))
    from core.search import sync_demo_corpus

    search = sync_demo_corpus()  # document search's demo corpus; once indexed, a re-run only hashes the files
    return {"search_documents_indexed": len(search.added) + len(search.updated), "search_refused": search.refused,
            "workspace": DEMO_WORKSPACE, "api_key_file": str(key_file), "synthetic_rows_added": added,
            "support_rows_added": support}


def clear() -> dict:
    """Delete exactly what the demo seed and `keel demo traffic` wrote as demo data, and nothing else: request-log
    rows with a demo request id (taken back out of the rollups), their review-queue items, the seeded support
    conversations (with their messages and ratings) and the synthetic customers' workspaces that nobody joined.
    The demo workspace, its key and the support bot's demo company (plans, accounts, orders) stay: sign-in and the
    bot need them. Re-running `keel demo seed` afterwards seeds the traffic again."""
    from sqlalchemy import delete, select

    from core import db
    from core.llm._rollup import unrecord
    from core.observe._synthetic import demo_id_bounds
    from core.support._seed import DEMO_HISTORY_PREFIX
    from core.tables import (
        RequestLog,
        ReviewItem,
        SupportConversation,
        SupportCsat,
        SupportHandoff,
        SupportMessage,
        SupportToolRun,
        ApiKey,
        Workspace,
        WorkspaceCredit,
        WorkspaceDocument,
        WorkspaceMember,
        WorkspaceUsage,
        table_of,
    )

    low, high = demo_id_bounds()
    log = table_of(RequestLog)
    removed = {"request_log": 0, "review_item": 0, "support_conversations": 0, "workspaces": 0}
    engine = db.get_engine()
    while True:  # in batches, each its own transaction, so a million demo rows never sit in memory at once
        with engine.begin() as conn:
            rows = [dict(r._mapping) for r in conn.execute(
                select(log).where(log.c.request_id >= low, log.c.request_id < high).limit(5000))]
            if not rows:
                break
            unrecord(conn, rows)
            conn.execute(delete(log).where(log.c.id.in_([r["id"] for r in rows])))
            removed["request_log"] += len(rows)
    review = table_of(ReviewItem)
    with engine.begin() as conn:
        removed["review_item"] = conn.execute(
            delete(review).where(review.c.request_id >= low, review.c.request_id < high)).rowcount
        conv = table_of(SupportConversation)
        ids = [r[0] for r in conn.execute(select(conv.c.id).where(conv.c.customer_sub.like(f"{DEMO_HISTORY_PREFIX}%")))]
        if ids:
            for table in (SupportCsat, SupportMessage, SupportHandoff, SupportToolRun):
                child = table_of(table)
                conn.execute(delete(child).where(child.c.conversation_id.in_(ids)))
            conn.execute(delete(conv).where(conv.c.id.in_(ids)))
        removed["support_conversations"] = len(ids)
        ws = table_of(Workspace)
        used = [~ws.c.id.in_(select(table_of(t).c.workspace_id))  # a workspace someone used is no longer demo
                for t in (WorkspaceMember, WorkspaceDocument, ApiKey, WorkspaceUsage, WorkspaceCredit)]
        synthetic = conn.execute(select(ws.c.id).where(
            ws.c.id.like("cust-%"), ws.c.name.like("Synthetic customer %"), *used)).scalars().all()
        if synthetic:
            conn.execute(delete(ws).where(ws.c.id.in_(synthetic)))
        removed["workspaces"] = len(synthetic)
    (get_settings().home / ".demo_traffic_seeded").unlink(missing_ok=True)
    return removed


def demo_counts() -> dict:
    """How much demo data there is, so pages can say which of what they show is sample data."""
    from sqlalchemy import func, select

    from core import db
    from core.observe._synthetic import demo_id_bounds
    from core.support._seed import DEMO_HISTORY_PREFIX
    from core.tables import RequestLog, ReviewItem, SupportConversation, table_of

    low, high = demo_id_bounds()
    with db.get_engine().connect() as conn:
        def count(column, *where) -> int:
            return int(conn.execute(select(func.count()).select_from(column.table).where(*where)).scalar() or 0)

        log, review, conv = table_of(RequestLog), table_of(ReviewItem), table_of(SupportConversation)
        return {"request_log": count(log.c.id, log.c.request_id >= low, log.c.request_id < high),
                "review_item": count(review.c.request_id, review.c.request_id >= low, review.c.request_id < high),
                "support_conversations": count(conv.c.id, conv.c.customer_sub.like(f"{DEMO_HISTORY_PREFIX}%"))}
