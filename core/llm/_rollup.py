"""Writes request-log rows together with the hourly rollups the dashboard reads, in one transaction."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import insert
from sqlalchemy.engine import Connection

from core.tables import LogRollupCustomer, LogRollupDims, LogRollupTime, RequestLog

_MEASURES = ("n", "cost_usd", "tokens_in", "tokens_out", "latency_sum", "ttft_sum", "ttft_n", "refusals")
# Capability-drift measures, kept only on the breakdown rollup (hour × feature × model × tier × prompt × status).
_DRIFT_MEASURES = ("json_asked", "json_valid", "empty_outputs")
_ROLLUPS = (
    (LogRollupTime.__table__, ("hour", "status", "latency_bucket"), _MEASURES),
    (LogRollupDims.__table__, ("hour", "feature", "model", "tier", "prompt_version", "status"),
     _MEASURES + _DRIFT_MEASURES),
    (LogRollupCustomer.__table__, ("hour", "customer", "status"), _MEASURES),
)


def _key_value(row: dict, column: str):
    if column == "hour":
        return int(row["created_at"] // 3600)
    value = row[column]
    return "" if value is None else value


def is_empty_output(row: dict) -> bool:
    """A successful call that produced nothing: no output tokens, or only whitespace."""
    if row.get("status") != "ok":
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


def _upsert(conn: Connection, table, keys: tuple[str, ...], measures: tuple[str, ...], values: list[dict]) -> None:
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


def record(conn: Connection, rows: list[dict]) -> None:
    """Insert log rows and fold them into every rollup; the caller owns the transaction."""
    if not rows:
        return
    conn.execute(insert(RequestLog.__table__), rows)
    for table, keys, measures in _ROLLUPS:
        _upsert(conn, table, keys, measures, aggregate(rows, keys, drift=len(measures) > len(_MEASURES)))
