"""Per-suggestion telemetry in `completion_event`, written in batches by one background thread so the
keystroke path never waits for SQL. Acceptance arrives later and flips the row's `accepted` flag."""

from __future__ import annotations

import logging
import time

from sqlalchemy import insert, update

from core import db
from core.batching import BatchWriter

_logger = logging.getLogger(__name__)


class TelemetryWriter(BatchWriter):
    """Completion telemetry's batch writer (core.batching), flushed on shutdown like the request log."""

    def __init__(self, flush_interval_s: float = 0.5):
        super().__init__("keel-completion-telemetry", flush_interval_s=flush_interval_s, batch=500)
        self.written = 0

    def record(self, session, outcome) -> None:
        self.put(("row", {
            "created_at": time.time(), "suggestion_id": outcome.id, "session_id": session.session_id[:64],
            "user": session.user, "customer": session.customer, "path": outcome.path[:300],
            "language": outcome.language[:32], "status": outcome.status, "source": outcome.source,
            "cache_hit": outcome.source in ("exact", "typed_ahead"),
            "cancelled": outcome.status in ("cancelled", "superseded"), "accepted": outcome.accepted,
            "speculative": outcome.speculative, "speculative_hit": outcome.speculative_hit,
            "perceived_ms": outcome.perceived_ms, "model_ms": outcome.model_ms, "debounce_ms": outcome.debounce_ms,
            "tokens_out": outcome.tokens_out, "chars": len(outcome.text), "request_id": outcome.request_id,
        }))

    def mark_accepted(self, suggestion_id: str) -> None:
        self.put(("accept", suggestion_id))

    def write_batch(self, items: list) -> None:
        from core.tables import CompletionEvent, table_of

        table = table_of(CompletionEvent)
        rows = [value for kind, value in items if kind == "row"]
        accepted = {value for kind, value in items if kind == "accept"}
        for row in rows:
            if row["suggestion_id"] in accepted:
                row["accepted"] = True
        try:
            with db.get_engine().begin() as conn:
                if rows:
                    conn.execute(insert(table), rows)
                if accepted:
                    conn.execute(update(table).where(table.c.suggestion_id.in_(sorted(accepted)))
                                 .values(accepted=True))
            self.written += len(rows)
        except Exception as exc:  # telemetry must never break completion
            _logger.exception("completion telemetry write failed: %s", exc)


def recent_events(limit: int = 200, user: str | None = None) -> list[dict]:
    from sqlmodel import col, select

    from core.tables import CompletionEvent

    with db.session() as s:
        query = select(CompletionEvent).order_by(col(CompletionEvent.id).desc()).limit(limit)
        if user is not None:
            query = query.where(CompletionEvent.user == user)
        return [row.model_dump() for row in s.exec(query)]
