"""Queries that select request-log rows by status bind RequestStatus values and still match the stored strings."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

from core import config, db
from core.llm import RequestStatus, build_gateway, record_log_rows, set_gateway


def _row(i: int, status: str, error: str | None = None, **extra) -> dict:
    return dict(request_id=f"r{i}", attempt=0, created_at=time.time() - 60, feature="support", task="t",
                prompt_id=None, prompt_version=None, tier="capable", provider="up", model="m1", user="u",
                customer="c", input_text=f"question {i}", output_text="answer", tokens_in=1, tokens_out=1,
                ttft_ms=1.0, latency_ms=2.0, latency_bucket=0, cost_usd=0.0, status=status, error=error,
                refusal=False, json_valid=None, **extra)


def test_worker_crash_query_counts_only_error_rows(database, monkeypatch):
    from core.observe._worker_health import WORKER_CRASH_MARKERS, model_worker

    monkeypatch.setenv("KEEL_PROVIDERS", json.dumps({"up": {"kind": "openai", "base_url": "http://127.0.0.1:9",
                                                            "api_key": "k"}}))
    monkeypatch.setenv("KEEL_TIERS", json.dumps({"capable": ["up/m1"]}))
    config.reset_settings()
    crash = f"{WORKER_CRASH_MARKERS[0]} (signal 9)"
    rows = [_row(1, "error", crash), _row(2, "error", crash), _row(3, "ok", crash), _row(4, "error", "timeout"),
            _row(5, RequestStatus.ERROR, crash)]
    with db.get_engine().begin() as conn:
        record_log_rows(conn, rows)
    previous = set_gateway(build_gateway())
    try:
        now = time.time()
        result = model_worker(SimpleNamespace(since=now - 3600, until=now + 1))
    finally:
        set_gateway(previous)
    assert result["failed_attempts"] == 3
    assert sorted(r["request_id"] for r in result["recent"]) == ["r1", "r2", "r5"]


def test_stored_status_of_an_enum_row_is_the_plain_string(database):
    from sqlalchemy import text

    with db.get_engine().begin() as conn:
        record_log_rows(conn, [_row(1, RequestStatus.BUDGET_REFUSED, "hard budget")])
    with db.get_engine().connect() as conn:
        stored = conn.execute(text("SELECT status FROM request_log")).scalar_one()
    assert type(stored) is str and stored == "budget_refused"
