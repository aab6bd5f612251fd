"""The request log: one row per attempt, written by a background thread so calls never wait on SQL.

One bad row never costs the others: every value is cleaned on the way in (lone surrogates become U+FFFD, NUL is
removed, long text is cut with a marker, numbers are made finite and in range, metadata is always valid JSON);
a batch the database still refuses is retried row by row, and a row refused on its own is quarantined with its
error (a scrubbed copy keeps its cost in the totals budgets read). Health counts failures in a recent window.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlmodel import select

from core import db
from core.batching import BatchWriter
from core.llm._budgets import release_holds
from core.llm._rollup import record
from core.llm._types import RequestStatus
from core.tables import ModelPrice, RequestLog, RequestLogQuarantine, table_of

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
    status: RequestStatus
    error: str | None
    json_valid: bool | None
    metadata: Any = None  # the caller's tags (a dict, or JSON text); stored as valid JSON whatever arrives


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
                _logger.exception("cannot read model prices: %s", exc)
            self._loaded_at = now
        if model in self._prices:
            return self._prices[model]
        return self._shadow if provider == "embedded" else (0.0, 0.0)

    def cost(self, provider: str, model: str, tokens_in: int, tokens_out: int) -> float:
        p_in, p_out = self.price(provider, model)
        return (tokens_in * p_in + tokens_out * p_out) / 1_000_000


# -- cleaning values on the way in ---------------------------------------------------------------------------

MAX_TEXT_CHARS = 20_000  # input/output/error text kept per row
MAX_METADATA_CHARS = 8_000
_SURROGATE = re.compile("[\ud800-\udfff]")
_INT_MAX = 2**31 - 1  # INTEGER on PostgreSQL
_TEXT_COLUMNS_FREE = ("input_text", "output_text", "error", "metadata_json")


def clean_text(value: str, limit: int | None = MAX_TEXT_CHARS) -> str:
    """Text every database accepts: surrogate pairs joined, lone surrogates -> U+FFFD, NUL removed, cut to `limit`
    characters with a marker saying how much was cut."""
    if not value.isascii():
        if _SURROGATE.search(value):
            value = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    elif "\x00" not in value and (limit is None or len(value) <= limit):
        return value
    value = value.replace("\x00", "")
    if limit is not None and len(value) > limit:
        marker = f"…[truncated: {len(value):,} characters in all]"
        keep = max(0, limit - len(marker))
        value = value[:keep] + marker[: limit - keep]
    return value


def metadata_json(value: Any) -> str | None:
    """Metadata as valid JSON text, always: JSON text is re-encoded, anything else is dumped; what cannot be
    (invalid JSON, NaN, objects) is kept as a string inside a JSON object rather than failing the row."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, str):
        try:
            value = json.loads(value, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            return json.dumps({"invalid_json": clean_text(value, 2_000), "error": str(exc)[:200]})
    try:
        # Strings inside are cleaned like any text (PostgreSQL's JSON types reject \u0000 and lone surrogates);
        # ensure_ascii then leaves nothing a database could trip on.
        text_value = json.dumps(_clean_json(value), ensure_ascii=True, allow_nan=False)
    except (ValueError, TypeError, RecursionError) as exc:
        return json.dumps({"unserializable": clean_text(repr(value), 2_000), "error": str(exc)[:200]})
    if len(text_value) > MAX_METADATA_CHARS:
        return json.dumps({"truncated": True, "prefix": text_value[:2_000]})
    return text_value


def _clean_json(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value, None)
    if isinstance(value, dict):
        return {clean_text(str(k), None): _clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_json(v) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    raise TypeError(f"{type(value).__name__} is not JSON")


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _column_limits() -> dict[str, tuple[str, int | None]]:
    """Per column of request_log: its kind (text, int, float, bool) and, for VARCHAR, its length."""
    limits: dict[str, tuple[str, int | None]] = {}
    for column in table_of(RequestLog).columns:
        kind = getattr(column.type, "impl", column.type)  # SQLModel's AutoString is a TypeDecorator over String
        try:
            python_type: type = kind.python_type
        except NotImplementedError:
            python_type = object  # no Python type: "other" below
        kind = {str: "text", int: "int", float: "float"}.get(python_type, "other")
        limits[column.name] = (kind, getattr(column.type, "length", None) if kind == "text" else None)
    return limits


_COLUMNS = _column_limits()


def clean_row(row: dict) -> dict:
    """Every value made storable on SQLite and PostgreSQL alike (the class of 'one value fails the row')."""
    out = {}
    for name, value in row.items():
        kind, length = _COLUMNS.get(name, ("other", None))
        if isinstance(value, str):
            value = clean_text(value, length or MAX_TEXT_CHARS)
        elif kind == "int" and isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(value, float):
                value = int(value) if math.isfinite(value) and abs(value) < 2**53 else 0
            value = min(max(value, -_INT_MAX), _INT_MAX)
        elif kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = float(value) if math.isfinite(value) else (None if name == "ttft_ms" else 0.0)
        out[name] = value
    return out


# -- the writer ------------------------------------------------------------------------------------------------


_WRITTEN, _REFUSED, _UNAVAILABLE = "written", "refused", "unavailable"  # what one insert attempt came to


@dataclass
class _Pending:
    entry: LogEntry
    done: threading.Event | None = None  # set once the row is committed (or quarantined)
    urgent: bool = False  # write now: a response is waiting for this row


@dataclass
class _Release:
    hold_ids: list[str] = field(default_factory=list)


class RequestLogWriter(BatchWriter):
    """The request log's batch writer (core.batching): rows are inserted in batches; `flush()` waits until all is
    written.

    `write(entry, urgent=True)` skips the batching delay and returns an event set when the row is committed, so an
    API response can be held until its log row is durable."""

    def __init__(self, prices: PriceBook, *, redact: bool = False, flush_interval_s: float = 0.2, batch: int = 500,
                 review_share: float = 0.0, failure_window_s: float = 300.0, quarantine_dir: Path | None = None,
                 unavailable_wait_s: float = 120.0):
        super().__init__("keel-request-log", flush_interval_s=flush_interval_s, batch=batch)
        self._review_share = review_share
        self._prices = prices
        self._redact = redact
        self.failure_window_s = failure_window_s
        self._quarantine_dir = quarantine_dir
        self.written = 0
        self.failed = 0  # rows missing from request_log altogether (since start)
        self.quarantined = 0  # rows the database refused; kept in the quarantine, a scrubbed copy logged
        self._events: deque[tuple[float, str, str]] = deque(maxlen=1000)  # (when, "failed"|"quarantined", error)
        self.unavailable_wait_s = unavailable_wait_s  # how long one batch waits out a locked or unreachable database

    @property
    def prices(self) -> PriceBook:
        return self._prices

    def write(self, entry: LogEntry, *, urgent: bool = False) -> threading.Event:
        done = threading.Event()
        self.put(_Pending(entry, done, urgent))
        return done

    def release_holds(self, hold_ids: list[str]) -> None:
        """Delete budget holds in the same transaction as the rows queued before them (their cost rows)."""
        if hold_ids:
            self.put(_Release(list(hold_ids)))

    def is_urgent(self, item) -> bool:
        return isinstance(item, _Pending) and item.urgent

    def write_batch(self, items: list) -> None:
        self._process(items)

    def after_batch(self, items: list) -> None:
        for item in items:
            if isinstance(item, _Pending) and item.done is not None:
                item.done.set()

    def recent(self, window_s: float | None = None) -> dict:
        """Failures and quarantines in the last `window_s` seconds (health recovers once they age out)."""
        since = time.time() - (self.failure_window_s if window_s is None else window_s)
        recent = [e for e in list(self._events) if e[0] >= since]
        return {
            "failed_recent": sum(1 for e in recent if e[1] == "failed"),
            "quarantined_recent": sum(1 for e in recent if e[1] == "quarantined"),
            "last_error": recent[-1][2] if recent else None,
        }

    def _process(self, items: list) -> None:
        rows: list[dict] = []
        hold_ids: list[str] = []
        for item in items:
            if isinstance(item, _Release):
                hold_ids.extend(item.hold_ids)
                continue
            try:
                rows.append(self._row(item.entry))
            except Exception as exc:  # a value no cleaning anticipated: keep the entry, lose nothing else
                _logger.exception("cannot build a request-log row for %s", item.entry.request_id)
                self._quarantine([_raw_entry(item.entry)], f"cannot build the row: {exc!r}")
        outcome = self._insert_waiting(rows, hold_ids)
        if outcome == _WRITTEN:
            return
        if outcome == _UNAVAILABLE:  # down for longer than we wait: keep every row, blame none of them
            self._quarantine(rows, "the database stayed unavailable; rows kept here, not refused")
            return
        for index, row in enumerate(rows):  # the batch was refused for its data: find the bad row(s)
            outcome = self._insert_waiting([row], [])
            if outcome == _UNAVAILABLE:
                self._quarantine(rows[index:], "the database became unavailable; rows kept here, not refused")
                return
            if outcome == _REFUSED:
                self._quarantine_row(row)
        if hold_ids:
            self._insert([], hold_ids, tries=1)

    def _insert_waiting(self, rows: list[dict], hold_ids: list[str]) -> str:
        """Insert, retrying the same rows with growing pauses while the database is locked or unreachable (up to
        `unavailable_wait_s`): an outage must not look like bad data, or every row of the batch is quarantined."""
        deadline = time.monotonic() + self.unavailable_wait_s
        pause = 0.1
        while True:
            outcome = self._insert(rows, hold_ids, tries=1)
            if outcome != _UNAVAILABLE or time.monotonic() + pause > deadline:
                return outcome
            time.sleep(pause)
            pause = min(pause * 2, 5.0)

    def _insert(self, rows: list[dict], hold_ids: list[str], tries: int = 3) -> str:
        for attempt in range(tries):
            try:
                with db.get_engine().begin() as conn:
                    record(conn, rows, review_share=0.0 if self._redact else self._review_share)
                    release_holds(conn, hold_ids)
                self.written += len(rows)
                return _WRITTEN
            except (OperationalError, InterfaceError) as exc:  # locked or unreachable database: worth another try
                _logger.warning("request log insert of %d rows failed (try %d): %s", len(rows), attempt + 1, exc)
                if attempt + 1 < tries:
                    time.sleep(0.2 * (attempt + 1))
            except Exception as exc:  # the data itself (DataError, IntegrityError, ValueError…): retrying cannot help
                _logger.exception("request log insert of %d rows refused: %s", len(rows), exc)
                return _REFUSED
        return _UNAVAILABLE

    def _quarantine_row(self, row: dict) -> None:
        error = self._last_error(row)
        scrubbed = dict(row, input_text=None, output_text=None, metadata_json=None,
                        error=f"[keel: this row was quarantined: {error[:500]}]",
                        **{k: _ascii(v, _COLUMNS[k][1]) for k, v in row.items()
                           if isinstance(v, str) and k not in _TEXT_COLUMNS_FREE})
        self._quarantine([row], error, counted=False)
        if self._insert([scrubbed], [], tries=1) == _WRITTEN:
            self.quarantined += 1
            self._events.append((time.time(), "quarantined", error[:300]))
        else:
            self.failed += 1
            self._events.append((time.time(), "failed", error[:300]))

    def _last_error(self, row: dict) -> str:
        """Why the database refused the row alone (run once more to capture the message)."""
        try:
            with db.get_engine().begin() as conn:
                record(conn, [row])
                raise _Probe("refused with its batch, accepted alone")
        except _Probe as exc:  # rolled back: the retry below decides what is kept
            return str(exc)
        except Exception as exc:  # the refusal itself is the answer, kept in the quarantine with the row
            _logger.exception("request log row %s refused on its own", row.get("request_id"))
            return f"{type(exc).__name__}: {exc}"[:2_000]

    def _quarantine(self, raws: list[dict], error: str, counted: bool = True) -> None:
        """Keep refused rows with their error: in the quarantine table, else in a JSONL file under the data dir."""
        now = time.time()
        records = [dict(quarantined_at=now, request_id=_ascii(str(r.get("request_id", "")), 40),
                        error=_ascii(error, 2_000), row_json=_ascii_json(r)) for r in raws]
        try:
            with db.get_engine().begin() as conn:
                conn.execute(insert(table_of(RequestLogQuarantine)), records)
        except Exception as exc:
            _logger.exception("request log quarantine table unavailable (%s); writing to a file", exc)
            try:
                path = self._quarantine_path()
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("a", encoding="ascii") as fh:
                    for rec in records:
                        fh.write(json.dumps(rec, ensure_ascii=True) + "\n")
            except Exception:
                _logger.exception("cannot write the request log quarantine file")
        if counted:
            self.failed += len(raws)
            for _ in raws:
                self._events.append((now, "failed", error[:300]))

    def _quarantine_path(self) -> Path:
        if self._quarantine_dir is not None:
            return Path(self._quarantine_dir) / "request_log_quarantine.jsonl"
        from core.config import get_settings

        return get_settings().logs_dir / "request_log_quarantine.jsonl"

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
            latency_bucket=latency_bucket(e.latency_ms if math.isfinite(e.latency_ms) else 0.0),
            cost_usd=self._prices.cost(e.provider, e.model, e.tokens_in, e.tokens_out),
            status=e.status,
            error=e.error,
            refusal=looks_like_refusal(output) if output else False,
            json_valid=e.json_valid,
            metadata_json=None if self._redact else metadata_json(e.metadata),
        )
        return clean_row(row)


class _Probe(Exception):
    pass


def _ascii(value: str, limit: int | None) -> str:
    """Printable ASCII only (anything else as a backslash escape), cut to `limit`."""
    text = value.encode("ascii", "backslashreplace").decode("ascii").replace("\x00", "")
    text = "".join(c if c.isprintable() or c in "\n\t" else f"\\x{ord(c):02x}" for c in text)
    return text[:limit] if limit else text


def _ascii_json(row: dict) -> str:
    clipped = {k: (v[:4_000] + f"…[{len(v) - 4_000:,} more]" if isinstance(v, str) and len(v) > 4_000 else v)
               for k, v in row.items()}
    return json.dumps(clipped, ensure_ascii=True, default=repr)


def _raw_entry(entry: LogEntry) -> dict:
    return {k: v if isinstance(v, (str, int, float, bool, type(None))) else repr(v)
            for k, v in entry.__dict__.items()}
