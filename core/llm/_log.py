"""The request log: one row per attempt, written by a background thread so calls never wait on SQL."""

from __future__ import annotations

import logging
import math
import queue
import re
import threading
import time
from dataclasses import dataclass

from sqlmodel import select

from core import db
from core.llm._rollup import record
from core.tables import ModelPrice

_logger = logging.getLogger(__name__)
LATENCY_BUCKET_BASE = 1.05  # 5 % wide buckets: percentiles from a GROUP BY, precise to about 5 %
_REFUSAL = re.compile(
    r"\b(i\s*(?:am|'m)\s*(?:sorry|unable)|i\s*(?:can(?:no|')t|cannot|won't)\s*(?:help|assist|comply|provide|do that)"
    r"|as an ai\b)",
    re.IGNORECASE,
)


def latency_bucket(latency_ms: float) -> int:
    return int(round(math.log(max(latency_ms, 1.0)) / math.log(LATENCY_BUCKET_BASE)))


def bucket_latency_ms(bucket: int) -> float:
    return LATENCY_BUCKET_BASE**bucket


def looks_like_refusal(text: str) -> bool:
    return bool(_REFUSAL.search(text[:400]))


@dataclass
class LogEntry:
    request_id: str
    attempt: int
    created_at: float
    feature: str
    task: str
    prompt_id: str | None
    prompt_version: str | None
    tier: str
    provider: str
    model: str
    user: str | None
    customer: str | None
    input_text: str | None
    output_text: str | None
    tokens_in: int
    tokens_out: int
    ttft_ms: float | None
    latency_ms: float
    status: str
    error: str | None
    json_valid: bool | None


class PriceBook:
    """Prices per model, read from SQL and cached for a few seconds so edits show up quickly."""

    def __init__(self, shadow_in: float, shadow_out: float, ttl_s: float = 5.0):
        self._shadow = (shadow_in, shadow_out)
        self._ttl_s = ttl_s
        self._prices: dict[str, tuple[float, float]] = {}
        self._loaded_at = 0.0

    def price(self, provider: str, model: str) -> tuple[float, float]:
        now = time.monotonic()
        if now - self._loaded_at > self._ttl_s:
            try:
                with db.session() as s:
                    rows = s.exec(select(ModelPrice)).all()
                self._prices = {r.model: (r.input_per_mtok, r.output_per_mtok) for r in rows}
            except Exception as exc:  # a missing table must not stop logging
                _logger.warning("cannot read model prices: %s", exc)
            self._loaded_at = now
        if model in self._prices:
            return self._prices[model]
        return self._shadow if provider == "embedded" else (0.0, 0.0)

    def cost(self, provider: str, model: str, tokens_in: int, tokens_out: int) -> float:
        p_in, p_out = self.price(provider, model)
        return (tokens_in * p_in + tokens_out * p_out) / 1_000_000


class RequestLogWriter:
    """Queue + one writer thread that inserts in batches; `flush()` waits until all is written."""

    def __init__(self, prices: PriceBook, *, redact: bool = False, flush_interval_s: float = 0.2, batch: int = 500,
                 review_share: float = 0.0):
        self._review_share = review_share
        self._queue: queue.Queue[LogEntry | None] = queue.Queue()
        self._prices = prices
        self._redact = redact
        self._interval = flush_interval_s
        self._batch = batch
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.written = 0
        self.failed = 0

    @property
    def prices(self) -> PriceBook:
        return self._prices

    def write(self, entry: LogEntry) -> None:
        if self._thread is None:
            self._start()
        self._queue.put(entry)

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="keel-request-log", daemon=True)
                self._thread.start()

    def flush(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                self._queue.task_done()
                return
            entries = [first]
            deadline = time.monotonic() + self._interval
            stop = False
            while len(entries) < self._batch:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    self._queue.task_done()
                    break
                entries.append(item)
            self._insert(entries)
            for _ in entries:
                self._queue.task_done()
            if stop:
                return

    def _insert(self, entries: list[LogEntry]) -> None:
        rows = [self._row(e) for e in entries]
        for attempt in range(3):
            try:
                with db.get_engine().begin() as conn:
                    record(conn, rows, review_share=0.0 if self._redact else self._review_share)
                self.written += len(rows)
                return
            except Exception as exc:
                _logger.warning("request log insert failed (try %d): %s", attempt + 1, exc)
                time.sleep(0.2 * (attempt + 1))
        self.failed += len(rows)
        _logger.error("dropped %d request log rows after 3 failed inserts", len(rows))

    def _row(self, e: LogEntry) -> dict:
        output = e.output_text or ""
        row = dict(
            request_id=e.request_id,
            attempt=e.attempt,
            created_at=e.created_at,
            feature=e.feature,
            task=e.task,
            prompt_id=e.prompt_id,
            prompt_version=e.prompt_version,
            tier=e.tier,
            provider=e.provider,
            model=e.model,
            user=e.user,
            customer=e.customer,
            input_text="[redacted]" if self._redact else e.input_text,
            output_text="[redacted]" if self._redact else e.output_text,
            tokens_in=e.tokens_in,
            tokens_out=e.tokens_out,
            ttft_ms=e.ttft_ms,
            latency_ms=e.latency_ms,
            latency_bucket=latency_bucket(e.latency_ms),
            cost_usd=self._prices.cost(e.provider, e.model, e.tokens_in, e.tokens_out),
            status=e.status,
            error=e.error,
            refusal=looks_like_refusal(output) if output else False,
            json_valid=e.json_valid,
        )
        # PostgreSQL text cannot hold NUL bytes; a prompt containing one must still be logged.
        return {k: v.replace("\x00", "\ufffd") if isinstance(v, str) else v for k, v in row.items()}
