"""The embedded model's worker process as the Dashboard shows it: live state, and the calls its crashes failed."""

from __future__ import annotations

from sqlalchemy import text

from core import db


WORKER_CRASH_MARKERS = ("embedded model worker crashed", "embedded model worker could not start",
                        "embedded model worker sent nothing")


def model_worker(window, limit: int = 20) -> dict:
    """The embedded model's worker process: its state in this process, and the attempts its crashes failed.

    Crashes are read from the request log (every failed attempt names the crash and the signal), so every replica
    sees the same history; the live state (pid, restarts) is this process's own worker."""
    from core.llm import RequestStatus, get_gateway

    states = {name: provider.health() for name, provider in get_gateway().providers.items()
              if hasattr(provider, "health")}
    clauses = " OR ".join(f"error LIKE :m{i}" for i in range(len(WORKER_CRASH_MARKERS)))
    params = {f"m{i}": f"%{m}%" for i, m in enumerate(WORKER_CRASH_MARKERS)}
    with db.get_engine().connect() as conn:
        rows = conn.execute(text(
            "SELECT id, request_id, created_at, feature, task, model, error FROM request_log "
            f"WHERE created_at >= :since AND created_at < :until AND status = :error AND ({clauses}) "
            "ORDER BY created_at DESC LIMIT :limit"),
            {**params, "since": window.since, "until": window.until, "limit": limit,
             "error": RequestStatus.ERROR}).mappings().all()
        total = conn.execute(text(
            f"SELECT COUNT(*) FROM request_log WHERE created_at >= :since AND created_at < :until "
            f"AND status = :error AND ({clauses})"),
            {**params, "since": window.since, "until": window.until, "error": RequestStatus.ERROR}).scalar_one()
    return {"workers": states, "failed_attempts": int(total), "recent": [dict(r) for r in rows]}
