"""SQL engine, sessions and migrations: the only way Keel code reaches the database.

SQLite (WAL) by default, PostgreSQL when `KEEL_DATABASE_URL` says so; Alembic brings either to head on start.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Insert, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlmodel import Session, create_engine

from core.config import get_settings

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_engine: Engine | None = None
_engine_url: str | None = None
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=30)


def get_engine() -> Engine:
    """The process-wide engine for the configured database URL (rebuilt if the URL changed)."""
    global _engine, _engine_url
    url = get_settings().database_url
    with _lock:
        if _engine is None or _engine_url != url:
            if _engine is not None:
                _engine.dispose()
            _engine, _engine_url = make_engine(url), url
        return _engine


def dispose_engine() -> None:
    global _engine, _engine_url
    with _lock:
        if _engine is not None:
            _engine.dispose()
        _engine, _engine_url = None, None


@contextmanager
def session() -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(get_engine(), expire_on_commit=False) as s:
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise


def _alembic_config(connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: Engine | None = None) -> str:
    """Apply every pending migration; returns the revision the database is at afterwards."""
    from alembic import command

    engine = engine or get_engine()
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "head")
    revision = current_revision(engine)
    assert revision is not None, "alembic_version is empty right after upgrading to head"
    return revision


def current_revision(engine: Engine | None = None) -> str | None:
    engine = engine or get_engine()
    with engine.connect() as connection:
        try:
            row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
        except (OperationalError, ProgrammingError):  # no alembic_version table yet: a database never migrated
            return None
    return row[0] if row else None


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config(None)).get_current_head()
    assert head is not None, f"no migrations in {_MIGRATIONS}"  # None only for an empty versions/ directory
    return head


def ping(engine: Engine | None = None) -> None:
    """Raise if the database cannot answer a trivial query."""
    with (engine or get_engine()).connect() as connection:
        connection.execute(text("SELECT 1"))


def insert_ignoring_duplicates(conn, table, rows: list[dict]) -> int:
    """INSERT … ON CONFLICT DO NOTHING on either database: replicas seeding the same rows at once both succeed.
    Returns how many rows this call inserted."""
    if not rows:
        return 0
    dialect = conn.get_bind().dialect if hasattr(conn, "get_bind") else conn.dialect  # a Session or a Connection
    statement: Insert  # each dialect's Insert, both with on_conflict_do_nothing
    if dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement = pg_insert(table).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(table).on_conflict_do_nothing()
    return conn.execute(statement, rows).rowcount or 0


def update_row(table, key, **values) -> None:
    """Set some columns of one row by primary key and commit (a row deleted meanwhile is left deleted)."""
    with session() as s:
        row = s.get(table, key)
        if row is None:
            return
        for name, value in values.items():
            setattr(row, name, value)
        s.add(row)
        s.commit()
