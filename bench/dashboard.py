"""Dashboard read speed at 1,000,000 request-log rows: `core.observe.dashboard()` vs a naive GROUP BY.

The SQLite database of synthetic rows (`core.observe._synthetic.insert_synthetic`) is generated once and cached as
`var/bench/dashboard-<rows>.db` (+ `.json` with the generation time and schema revision); a re-run reuses it,
and it is rebuilt when the row count or the schema revision differs. The window is the 30 days ending at the
generation time (`Window.last(24*30, now=<generated at>)`), so a cached file gives the same answer every day.

Timed: `dashboard(window)` (every query the Dashboard page runs: three rollup reads and the recent calls),
after a warm-up, over several runs alternating with the baseline: one naive
`SELECT feature, model, tier, prompt_version, status, COUNT(*), SUM(cost_usd), ... GROUP BY ...` straight
over `request_log` for the same span. The baseline computes less (no customer breakdown, no time series, no
percentiles), so the ratio understates the rollups' advantage. Target: median ≤ 1000 ms.

    python bench/dashboard.py [--json] [--rows 1000000] [--runs 5] [--rebuild]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import _common
from _common import BENCH_VAR, Report, median, ms_since

TARGET_MEDIAN_MS = 1000.0
WINDOW_HOURS = 24 * 30

NAIVE_SQL = (
    "SELECT feature, model, tier, prompt_version, status, COUNT(*) AS n, SUM(cost_usd) AS cost, "
    "SUM(tokens_in) AS tin, SUM(tokens_out) AS tout, SUM(latency_ms) AS lat, SUM(ttft_ms) AS ttft, "
    "COUNT(ttft_ms) AS ttft_n, SUM(refusal) AS refusals "
    "FROM request_log WHERE created_at >= :since AND created_at < :until "
    "GROUP BY feature, model, tier, prompt_version, status"
)


def _log(message: str) -> None:
    print(f"[dashboard] {message}", file=sys.stderr, flush=True)


def _remove_sqlite(path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.remove(f"{path}{suffix}")
        except FileNotFoundError:
            pass


def ensure_database(rows: int, home: str, rebuild: bool) -> tuple[str, dict, bool]:
    """The cached database for `rows` rows (built if missing or stale); returns (path, meta, built_now)."""
    from sqlalchemy import text

    from core import db
    from core.observe._synthetic import insert_synthetic

    BENCH_VAR.mkdir(parents=True, exist_ok=True)
    path = BENCH_VAR / f"dashboard-{rows}.db"
    meta_path = BENCH_VAR / f"dashboard-{rows}.json"
    head = db.head_revision()
    if path.exists() and meta_path.exists() and not rebuild:
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError):
            meta = {}
        if meta.get("rows") == rows and meta.get("revision") == head and meta.get("end"):
            return str(path), meta, False
        _log(f"cached {path.name} is stale (meta {meta}, schema head {head}); rebuilding")

    partial = BENCH_VAR / f"dashboard-{rows}.db.partial"
    _remove_sqlite(partial)
    _common.fresh_core(HOME=home, DATABASE_URL=f"sqlite:///{partial}")
    end = time.time()
    started = time.perf_counter()
    step = 100_000
    written = 0
    while written < rows:
        size = min(step, rows - written)
        insert_synthetic(size, seed=7 + written, end=end)  # same rows as one insert_synthetic(rows) call
        written += size
        rate = written / max(time.perf_counter() - started, 1e-6)
        _log(f"generated {written:,}/{rows:,} rows ({rate:,.0f} rows/s)")
    with db.get_engine().connect() as conn:
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    db.dispose_engine()
    _remove_sqlite(path)
    os.replace(partial, path)
    _remove_sqlite(partial)
    meta = {"rows": rows, "end": end, "seed": 7, "revision": head,
            "generated_s": round(time.perf_counter() - started, 1),
            "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(end))}
    meta_path.write_text(json.dumps(meta, indent=2))
    return str(path), meta, True


def body(report: Report, rows: int, runs: int, rebuild: bool) -> None:
    from sqlalchemy import text

    from core import db
    from core.observe import Window, dashboard

    with tempfile.TemporaryDirectory(prefix="keel-bench-") as home:
        path, meta, built = ensure_database(rows, home, rebuild)
        _common.fresh_core(HOME=home, DATABASE_URL=f"sqlite:///{path}")
        engine = db.get_engine()
        with engine.connect() as conn:
            total_rows = conn.execute(text("SELECT COUNT(*) FROM request_log")).scalar_one()
        if total_rows != rows:
            report.fail(f"{path} holds {total_rows:,} rows, expected {rows:,}; re-run with --rebuild")

        window = Window.last(WINDOW_HOURS, now=meta["end"])
        span = {"since": window.since, "until": window.until}

        def naive() -> tuple[float, list]:
            started = time.perf_counter()
            with engine.connect() as conn:
                result = conn.execute(text(NAIVE_SQL), span).mappings().all()
            return ms_since(started), result

        def dash() -> tuple[float, object]:
            started = time.perf_counter()
            result = dashboard(window)
            return ms_since(started), result

        dash()  # warm-up: page cache, statement cache
        naive()
        dash_ms, naive_ms, internal_ms = [], [], []
        board = groups = None
        for i in range(runs):
            for arm in (("dashboard", "naive") if i % 2 == 0 else ("naive", "dashboard")):
                if arm == "dashboard":
                    elapsed, board = dash()
                    dash_ms.append(elapsed)
                    internal_ms.append(board.elapsed_ms)
                else:
                    elapsed, groups = naive()
                    naive_ms.append(elapsed)
        with engine.connect() as conn:
            plan = " | ".join(r[-1] for r in conn.execute(text("EXPLAIN QUERY PLAN " + NAIVE_SQL), span).all())
        size_mb = os.path.getsize(path) / 2**20
        db.dispose_engine()

    # the two must agree: same span, same rows
    naive_requests = sum(int(g["n"]) for g in groups)
    naive_cost = sum(float(g["cost"] or 0) for g in groups)
    by_feature: dict[str, int] = {}
    for g in groups:
        by_feature[g["feature"]] = by_feature.get(g["feature"], 0) + int(g["n"])
    dash_by_feature = {r["feature"]: r["requests"] for r in board.breakdowns["feature"]}
    agree = (board.totals["requests"] == naive_requests and dash_by_feature == by_feature
             and abs(board.totals["cost_usd"] - naive_cost) <= 1e-6 * max(1.0, naive_cost) + 1e-5)

    d_med, n_med = median(dash_ms), median(naive_ms)
    report.metric("rows", total_rows, label="rows in request_log")
    report.metric("db_file", os.path.relpath(path, _common.REPO_ROOT), label="database (cached)")
    report.metric("db_size_mb", size_mb, "MiB", "database size")
    report.metric("db_built_now", built, label="generated in this run")
    if built:
        report.metric("generate_s", meta["generated_s"], "s", "generation time")
    report.metric("window_requests", board.totals["requests"], label="requests in the 30-day window")
    report.metric("runs", runs, label="runs per arm (after 1 warm-up each)")
    report.metric("dashboard_median_ms", d_med, "ms", "dashboard(Window.last(720h)) median")
    report.metric("dashboard_min_ms", min(dash_ms), "ms", "dashboard min")
    report.metric("dashboard_max_ms", max(dash_ms), "ms", "dashboard max")
    report.metric("dashboard_internal_ms", median(internal_ms), "ms", "dashboard's own elapsed_ms, median")
    report.metric("naive_median_ms", n_med, "ms", "baseline: naive GROUP BY over request_log, median")
    report.metric("ratio", d_med / n_med if n_med else None, "x", "ratio dashboard / naive (median)")
    report.metric("speedup", n_med / d_med if d_med else None, "x", "speed-up over naive")
    report.metric("naive_plan", plan, label="naive query plan")
    report.check("dashboard_median_ms", d_med, "<=", TARGET_MEDIAN_MS, "ms", "dashboard median")
    report.check("aggregates_agree", agree, "==", True, "", "dashboard totals == naive totals")
    report.note("the naive baseline computes only the feature×model×tier×version×status breakdown; the "
                "dashboard also returns customer breakdowns, a time series, percentiles and recent calls")


def main() -> int:
    parser = argparse.ArgumentParser(description="Dashboard query time at 1M rows vs a naive GROUP BY.")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5, help="measured runs per arm (default 5)")
    parser.add_argument("--rebuild", action="store_true", help="regenerate the cached database")
    args = parser.parse_args()
    report = Report("dashboard", f"core.observe.dashboard at {args.rows:,} rows vs a naive GROUP BY")
    return _common.run(report, lambda r: body(r, args.rows, args.runs, args.rebuild), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
