"""Small SQL helpers that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import time

from sqlalchemy import Insert


def insert_ignore(session, table, values: dict) -> bool:
    """INSERT … ON CONFLICT DO NOTHING; True if this call inserted the row (race-free on both databases)."""
    statement: Insert  # each dialect's Insert, both with on_conflict_do_nothing
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement = pg_insert(table).values(**values).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(table).values(**values).on_conflict_do_nothing()
    result = session.exec(statement)
    return bool(result.rowcount)


def clean_text(value: str) -> str:
    """NUL cannot be stored in PostgreSQL text; keep everything else exactly as given."""
    return value.replace("\x00", "\ufffd")


def now() -> float:
    return time.time()
