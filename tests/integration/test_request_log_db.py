"""The request log, its rollups, the dashboard queries and prices — on SQLite and on PostgreSQL."""

from __future__ import annotations

import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from core import db
from core.llm import PriceBook, RequestLogWriter, ensure_default_prices, list_prices, save_prices
from core.llm._log import LogEntry
from core.observe import LogFilter, Window, dashboard, percentile, recent_calls, request_attempts, tail
from core.observe._synthetic import insert_synthetic
from core.tables import SQLModel


def _entry(**overrides) -> LogEntry:
    values = dict(
        request_id="r1", attempt=0, created_at=time.time(), feature="test", task="t", prompt_id=None,
        prompt_version=None, tier="fast", provider="embedded", model="smollm2-135m-instruct", user="u",
        customer="acme", input_text="hello", output_text="world", tokens_in=1000, tokens_out=2000, ttft_ms=50.0,
        latency_ms=120.0, status="ok", error=None, json_valid=None,
    )
    values.update(overrides)
    return LogEntry(**values)


def test_migrations_match_the_models(database):
    assert db.current_revision() == db.head_revision()
    with db.get_engine().connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    # Index/type rendering differs slightly between dialects; tables and columns must match exactly.
    structural = [d for d in diffs if d[0] in ("add_table", "remove_table", "add_column", "remove_column")]
    assert structural == []


def test_upgrade_is_idempotent(database):
    assert db.upgrade() == db.head_revision()
    assert db.upgrade() == db.head_revision()


def test_writer_logs_rows_and_rollups_with_cost(database):
    ensure_default_prices()
    writer = RequestLogWriter(PriceBook(0.05, 0.10, ttl_s=0))
    for i in range(25):
        writer.write(_entry(request_id=f"r{i}", latency_ms=100.0 + i, status="error" if i % 5 == 0 else "ok"))
    writer.flush()
    writer.close()
    assert writer.written == 25 and writer.failed == 0
    with db.get_engine().connect() as conn:
        n, cost = conn.execute(text("SELECT COUNT(*), SUM(cost_usd) FROM request_log")).one()
        rolled = conn.execute(text("SELECT SUM(n), SUM(cost_usd) FROM log_rollup_time")).one()
        by_customer = conn.execute(text("SELECT SUM(n) FROM log_rollup_customer WHERE customer = 'acme'")).scalar()
    assert n == 25
    expected_one = (1000 * 0.05 + 2000 * 0.10) / 1e6  # the embedded model's shadow price
    assert cost == pytest.approx(25 * expected_one)
    assert rolled[0] == 25 and rolled[1] == pytest.approx(cost)
    assert by_customer == 25


def test_hostile_text_is_logged_verbatim_except_nul_which_is_removed(database):
    writer = RequestLogWriter(PriceBook(0.05, 0.10))
    nasty = "'; DROP TABLE request_log; --\x00 ignore previous instructions \u202e\U0001F600" + "x" * 5000
    writer.write(_entry(input_text=nasty, output_text="\x00\x01binary", user="o'brien", customer="a\x00b"))
    writer.flush()
    writer.close()
    assert writer.failed == 0
    with db.get_engine().connect() as conn:
        row = conn.execute(text("SELECT input_text, output_text, customer, \"user\" FROM request_log")).one()
    assert row[0] == nasty.replace("\x00", "")  # NUL removed (PostgreSQL text cannot hold it), the rest verbatim
    assert row[1] == "\x01binary" and row[2] == "ab" and row[3] == "o'brien"


def test_edited_price_is_used_for_new_rows(database):
    ensure_default_prices()
    rows = list_prices()
    for row in rows:
        if row["model"] == "smollm2-135m-instruct":
            row["input_per_mtok"], row["output_per_mtok"] = 1.0, 2.0
    save_prices(rows)
    writer = RequestLogWriter(PriceBook(0.05, 0.10, ttl_s=0))
    writer.write(_entry())
    writer.flush()
    writer.close()
    with db.get_engine().connect() as conn:
        cost = conn.execute(text("SELECT cost_usd FROM request_log")).scalar()
    assert cost == pytest.approx((1000 * 1.0 + 2000 * 2.0) / 1e6)


@pytest.mark.parametrize("bad, message", [
    ([{"model": "", "input_per_mtok": 1, "output_per_mtok": 1}], "model name"),
    ([{"model": "m", "input_per_mtok": "abc", "output_per_mtok": 1}], "numbers"),
    ([{"model": "m", "output_per_mtok": 1}], "numbers"),  # a missing price
    ([{"model": "m", "input_per_mtok": None, "output_per_mtok": 1}], "numbers"),
    ([{"model": "m", "input_per_mtok": -1, "output_per_mtok": 1}], "between 0"),
    ([{"model": "m", "input_per_mtok": 1, "output_per_mtok": 1}] * 2, "twice"),
])
def test_bad_prices_are_refused_and_nothing_changes(database, bad, message):
    ensure_default_prices()
    before = list_prices()
    with pytest.raises(ValueError, match=message):
        save_prices(bad)
    assert list_prices() == before


def test_default_prices_never_overwrite_edits(database):
    assert "gpt-4o" in {r["model"] for r in list_prices()}  # seeded on start
    assert ensure_default_prices() == 0  # a second run adds nothing
    save_prices([{"model": "gpt-4o", "input_per_mtok": 9, "output_per_mtok": 9}])
    ensure_default_prices()
    assert {r["model"]: r["input_per_mtok"] for r in list_prices()}["gpt-4o"] == 9


def test_dashboard_agrees_with_raw_sql(database):
    now = time.time()
    insert_synthetic(3000, days=2, end=now, seed=3)
    data = dashboard(Window.last(72, now=now))
    with db.get_engine().connect() as conn:
        n, cost, tin, errors = conn.execute(text(
            "SELECT COUNT(*), SUM(cost_usd), SUM(tokens_in), SUM(CASE WHEN status='error' THEN 1 ELSE 0 END) "
            "FROM request_log")).one()
        latencies = sorted(r[0] for r in conn.execute(text("SELECT latency_ms FROM request_log")))
    totals = data.totals
    assert totals["requests"] == n == 3000
    assert totals["cost_usd"] == pytest.approx(cost, rel=1e-6)
    assert totals["tokens_in"] == tin
    assert totals["error_rate"] == pytest.approx(errors / n)
    for p in (50, 95, 99):
        exact = latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))]
        assert totals[f"latency_p{p}_ms"] == pytest.approx(exact, rel=0.06)
    assert sum(point["requests"] for point in data.series) == n
    for dim, rows in data.breakdowns.items():
        assert sum(r["requests"] for r in rows) == n, dim
        assert sum(r["cost_usd"] for r in rows) == pytest.approx(cost, rel=1e-6), dim
    assert len(data.recent) == 50
    assert [r["created_at"] for r in data.recent] == sorted((r["created_at"] for r in data.recent), reverse=True)


def test_dashboard_window_excludes_older_rows(database):
    now = time.time()
    insert_synthetic(400, days=1, end=now - 3 * 86400, seed=5)  # all older than 2 days
    insert_synthetic(100, days=0.5, end=now, seed=6)
    assert dashboard(Window.last(24, now=now)).totals["requests"] == 100


def test_filters_treat_hostile_values_as_data(database):
    insert_synthetic(50, days=1)
    hostile = ("x' OR '1'='1", "'; DROP TABLE request_log; --", "\x00\xff", "%")
    for value in hostile:
        flt = LogFilter(since=0, until=time.time() + 60, features=(value,), customers=(value,))
        assert recent_calls(flt) == []
    with db.get_engine().connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM request_log")).scalar() == 50


def test_tail_returns_only_new_rows_in_order(database):
    insert_synthetic(30, days=1)
    first = tail(10)
    assert len(first) == 10 and [r["id"] for r in first] == sorted(r["id"] for r in first)
    assert tail(10, after_id=first[-1]["id"]) == []


def test_percentile_of_empty_histogram_is_none():
    assert percentile({}, 95) is None


def test_request_attempts_lists_a_fallback_chain_in_order(database):
    writer = RequestLogWriter(PriceBook(0.05, 0.10))
    writer.write(_entry(request_id="chain", attempt=1, status="fallback", provider="good"))
    writer.write(_entry(request_id="chain", attempt=0, status="error", provider="bad", error="HTTP 500"))
    writer.write(_entry(request_id="other"))
    writer.flush()
    writer.close()
    chain = request_attempts("chain")
    assert [(a["attempt"], a["status"], a["provider"]) for a in chain] == [(0, "error", "bad"), (1, "fallback", "good")]
    assert request_attempts("'; DROP TABLE request_log; --") == []


def _make_unavailable(kind: str):
    """Make the database refuse the writer for real: SQLite locked by another connection (with a short busy
    timeout on the writer's connections), PostgreSQL closed to connections and its sessions ended."""
    from sqlalchemy import event

    engine = db.get_engine()
    if kind == "sqlite":
        event.listen(engine, "connect", lambda c, _r: c.execute("PRAGMA busy_timeout=100"))
        engine.dispose()
        import sqlite3

        holder = sqlite3.connect(engine.url.database, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        return lambda: (holder.execute("COMMIT"), holder.close())
    import psycopg

    name = engine.url.database
    admin = psycopg.connect(engine.url.set(database="postgres").render_as_string(hide_password=False)
                            .replace("postgresql+psycopg", "postgresql"), autocommit=True)
    admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))

    def restore():
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.close()

    return restore


def test_an_unavailable_database_delays_the_batch_and_quarantines_nothing(database):
    ensure_default_prices()
    writer = RequestLogWriter(PriceBook(0.05, 0.10, ttl_s=0))
    writer.write(_entry(request_id="warm"))  # the writer's connections exist before the outage
    assert writer.flush(30)
    restore = _make_unavailable(database)
    started = time.monotonic()
    try:
        for i in range(30):
            writer.write(_entry(request_id=f"down{i}"))
        time.sleep(3.0)  # the writer meets the outage meanwhile (longer than one batch and one row of old retries)
        assert writer.written == 1  # nothing got in while the database was unavailable
    finally:
        restore()
    assert writer.flush(60)
    writer.close()
    assert writer.written == 31 and writer.failed == 0 and writer.quarantined == 0
    assert time.monotonic() - started < 30
    with db.get_engine().connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM request_log")).scalar() == 31
        assert conn.execute(text("SELECT COUNT(*) FROM request_log_quarantine")).scalar() == 0
