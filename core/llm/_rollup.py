"""Writes request-log rows together with the hourly rollups the dashboard reads, in one transaction."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import Table, insert
from sqlalchemy.engine import Connection

from core import db
from core.llm._types import ANSWERED, RequestStatus
from core.tables import LogRollupCustomer, LogRollupDims, LogRollupTime, RequestLog, ReviewItem, table_of

if TYPE_CHECKING:  # the dialects themselves are imported when first used
    from sqlalchemy.dialects.postgresql import Insert as PgInsert
    from sqlalchemy.dialects.sqlite import Insert as SqliteInsert

_MEASURES = ("n", "cost_usd", "tokens_in", "tokens_out", "latency_sum", "ttft_sum", "ttft_n", "refusals")
# Capability-drift measures, kept only on the breakdown rollup (hour × feature × model × tier × prompt × status).
_DRIFT_MEASURES = ("json_asked", "json_valid", "empty_outputs")
_ROLLUPS = (
    (table_of(LogRollupTime), ("hour", "status", "latency_bucket"), _MEASURES),
    (table_of(LogRollupDims), ("hour", "feature", "model", "tier", "prompt_version", "status"),
     _MEASURES + _DRIFT_MEASURES),
    (table_of(LogRollupCustomer), ("hour", "customer", "status"), _MEASURES),
)


def _key_value(row: dict, column: str):
    if column == "hour":
        return int(row["created_at"] // 3600)
    value = row[column]
    return "" if value is None else value


def is_empty_output(row: dict) -> bool:
    """A successful call that produced nothing: no output tokens, or only whitespace."""
    if row.get("status") != RequestStatus.OK:
        return False
    text = row.get("output_text")
    return not (row.get("tokens_out") or 0) or (text is not None and not text.strip())


def aggregate(rows: list[dict], keys: tuple[str, ...], drift: bool = False) -> list[dict]:
    measures = _MEASURES + _DRIFT_MEASURES if drift else _MEASURES
    groups: dict[tuple, list[float]] = defaultdict(lambda: [0] * len(measures))
    for row in rows:
        m = groups[tuple(_key_value(row, k) for k in keys)]
        m[0] += 1
        m[1] += row["cost_usd"] or 0.0
        m[2] += row["tokens_in"] or 0
        m[3] += row["tokens_out"] or 0
        m[4] += row["latency_ms"] or 0.0
        if row["ttft_ms"] is not None:
            m[5] += row["ttft_ms"]
            m[6] += 1
        m[7] += 1 if row["refusal"] else 0
        if drift:
            valid = row.get("json_valid")
            if valid is not None:
                m[8] += 1
                m[9] += 1 if valid else 0
            m[10] += 1 if is_empty_output(row) else 0
    return [dict(zip(keys, key)) | dict(zip(measures, values)) for key, values in groups.items()]


def _upsert(conn: Connection, table: Table, keys: tuple[str, ...], measures: tuple[str, ...],
            values: list[dict]) -> None:
    dialect_insert: Callable[[Table], PgInsert | SqliteInsert]  # both have on_conflict_do_update
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    stmt = dialect_insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={m: table.c[m] + stmt.excluded[m] for m in measures},
    )
    conn.execute(stmt, values)


# Calls a reviewer can judge: an answer was given, and its text was kept. Eval runs are not production traffic.
_REVIEWABLE_STATUSES = ANSWERED
_NOT_SAMPLED_FEATURES = ("eval",)


def sampled_for_review(request_id: str, share: float) -> bool:
    """Deterministic by request id, so every attempt of one request agrees and a re-run samples the same calls."""
    if share <= 0:
        return False
    digest = hashlib.blake2b(request_id.encode("utf-8", "replace"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < share


def review_samples(rows: list[dict], share: float) -> list[dict]:
    samples: dict[str, dict] = {}
    for row in rows:
        if (row["status"] in _REVIEWABLE_STATUSES and row.get("output_text") is not None
                and row["feature"] not in _NOT_SAMPLED_FEATURES and sampled_for_review(row["request_id"], share)):
            samples[row["request_id"]] = dict(
                request_id=row["request_id"], sampled_at=row["created_at"], feature=row["feature"],
                model=row["model"], prompt_version=row.get("prompt_version"),
            )
    return list(samples.values())


def record(conn: Connection, rows: list[dict], *, review_share: float = 0.0) -> None:
    """Insert log rows, fold them into every rollup and sample some for review; the caller owns the transaction."""
    if not rows:
        return
    conn.execute(insert(table_of(RequestLog)), rows)
    for table, keys, measures in _ROLLUPS:
        _upsert(conn, table, keys, measures, aggregate(rows, keys, drift=len(measures) > len(_MEASURES)))
    samples = review_samples(rows, review_share)
    if samples:
        db.insert_ignoring_duplicates(conn, table_of(ReviewItem), samples)


def unrecord(conn: Connection, rows: list[dict]) -> None:
    """Take log rows back out of every rollup (before the caller deletes them), so totals match the log again;
    rollup cells left with no calls are dropped. The caller owns the transaction."""
    if not rows:
        return
    for table, keys, measures in _ROLLUPS:
        negated = [{k: (-v if k in measures else v) for k, v in cell.items()}
                   for cell in aggregate(rows, keys, drift=len(measures) > len(_MEASURES))]
        _upsert(conn, table, keys, measures, negated)
        conn.execute(table.delete().where(table.c.n <= 0))
