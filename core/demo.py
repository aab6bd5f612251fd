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

    # The support bot's demo company (plans, accounts, orders, invoices, CSAT history); warm=True trains and caches
    # the intent classifier and the knowledge-base embeddings, so a fresh install answers its first message quickly.
    support = seed_demo_company(warm=True)
    marker = settings.home / ".demo_traffic_seeded"
    added = 0
    if traffic_rows and not marker.exists():
        from core.ops._synthetic import insert_synthetic

        added = insert_synthetic(traffic_rows, days=7, review_share=settings.review_sample_share)
        marker.write_text(str(added))
    from core.search import sync_demo_corpus

    search = sync_demo_corpus()  # document search's demo corpus; once indexed, a re-run only hashes the files
    return {"search_documents_indexed": len(search.added) + len(search.updated), "search_refused": search.refused,
            "workspace": DEMO_WORKSPACE, "api_key_file": str(key_file), "synthetic_rows_added": added,
            "support_rows_added": support}
