"""Per-suggestion telemetry in `completion_event`, written in batches by one background thread so the
keystroke path never waits for SQL. Acceptance arrives later and flips the row's `accepted` flag."""

from __future__ import annotations

import logging
import queue
import threading
import time

from sqlalchemy import insert, update

from core import db

_logger = logging.getLogger(__name__)


class TelemetryWriter:
    def __init__(self, flush_interval_s: float = 0.5):
        self._queue: queue.Queue = queue.Queue()
        self._interval = flush_interval_s
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.written = 0

    def record(self, session, outcome) -> None:
        self._put(("row", {
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
        self._put(("accept", suggestion_id))

    def flush(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def _put(self, item) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="keel-completion-telemetry", daemon=True)
                    self._thread.start()
        self._queue.put(item)

    def _run(self) -> None:
        from core.tables import CompletionEvent

        table = CompletionEvent.__table__
        while True:
            items = [self._queue.get()]
            deadline = time.monotonic() + self._interval
            while len(items) < 500:
                try:
                    items.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
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
                _logger.warning("completion telemetry write failed: %s", exc)
            for _ in items:
                self._queue.task_done()


def recent_events(limit: int = 200, user: str | None = None) -> list[dict]:
    from sqlmodel import select

    from core.tables import CompletionEvent

    with db.session() as s:
        query = select(CompletionEvent).order_by(CompletionEvent.id.desc()).limit(limit)
        if user is not None:
            query = query.where(CompletionEvent.user == user)
        return [row.model_dump() for row in s.exec(query)]
