"""Writes request-log rows together with the hourly rollups the dashboard reads, in one transaction."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import insert
from sqlalchemy.engine import Connection

from core.tables import LogRollupCustomer, LogRollupDims, LogRollupTime, RequestLog

_MEASURES = ("n", "cost_usd", "tokens_in", "tokens_out", "latency_sum", "ttft_sum", "ttft_n", "refusals")
_ROLLUPS = (
    (LogRollupTime.__table__, ("hour", "status", "latency_bucket")),
    (LogRollupDims.__table__, ("hour", "feature", "model", "tier", "prompt_version", "status")),
    (LogRollupCustomer.__table__, ("hour", "customer", "status")),
)


def _key_value(row: dict, column: str):
    if column == "hour":
        return int(row["created_at"] // 3600)
    value = row[column]
    return "" if value is None else value


def aggregate(rows: list[dict], keys: tuple[str, ...]) -> list[dict]:
    groups: dict[tuple, list[float]] = defaultdict(lambda: [0] * len(_MEASURES))
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
    return [dict(zip(keys, key)) | dict(zip(_MEASURES, measures)) for key, measures in groups.items()]


def _upsert(conn: Connection, table, keys: tuple[str, ...], values: list[dict]) -> None:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    stmt = dialect_insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={m: table.c[m] + stmt.excluded[m] for m in _MEASURES},
    )
    conn.execute(stmt, values)


def record(conn: Connection, rows: list[dict]) -> None:
    """Insert log rows and fold them into every rollup; the caller owns the transaction."""
    if not rows:
        return
    conn.execute(insert(RequestLog.__table__), rows)
    for table, keys in _ROLLUPS:
        _upsert(conn, table, keys, aggregate(rows, keys))
