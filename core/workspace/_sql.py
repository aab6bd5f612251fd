"""Small SQL helpers that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import time


def insert_ignore(session, table, values: dict) -> bool:
    """INSERT … ON CONFLICT DO NOTHING; True if this call inserted the row (race-free on both databases)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    result = session.exec(insert(table).values(**values).on_conflict_do_nothing())
    return bool(result.rowcount)


def clean_text(value: str) -> str:
    """NUL cannot be stored in PostgreSQL text; keep everything else exactly as given."""
    return value.replace("\x00", "\ufffd")


def now() -> float:
    return time.time()
