"""Demo data is labelled and removable in one action: seeding then `keel demo clear` leaves every real row (and the
rollups' real totals) as it was and no demo row — on SQLite and on PostgreSQL (issue 19 #9)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from core import db
from core.config import get_settings
from core.demo import clear
from core.llm import PriceBook, RequestLogWriter, ensure_default_prices
from core.llm._log import LogEntry
from core.annotation import queue_for_review, review_queue, review_total
from core.observe._synthetic import ensure_customer_workspaces, insert_synthetic
from core.support import seed_demo_company
from core.tables import SupportConversation, Workspace, WorkspaceMember


def _real_calls(n: int) -> None:
    writer = RequestLogWriter(PriceBook(0.05, 0.10, ttl_s=0))
    now = time.time()
    for i in range(n):
        writer.write(LogEntry(
            request_id=f"{i:032x}", attempt=0, created_at=now - i * 600, feature="support", task="answer",
            prompt_id=None, prompt_version=None, tier="fast", provider="embedded", model="smollm2-135m-instruct",
            user="u@acme.test", customer="acme", input_text=f"real question {i}", output_text="real answer",
            tokens_in=100, tokens_out=50, ttft_ms=40.0, latency_ms=300.0, status="ok", error=None, json_valid=None))
    writer.flush()
    writer.close()


def _totals() -> dict:
    with db.get_engine().connect() as conn:
        q = lambda sql: conn.execute(text(sql)).one()  # noqa: E731
        return {"log": q("SELECT COUNT(*), SUM(cost_usd) FROM request_log"),
                "time": q("SELECT SUM(n), SUM(cost_usd), SUM(tokens_in) FROM log_rollup_time"),
                "dims": q("SELECT SUM(n), SUM(json_asked), SUM(empty_outputs) FROM log_rollup_dims"),
                "customer": q("SELECT SUM(n), COUNT(*) FROM log_rollup_customer"),
                "review": q("SELECT COUNT(*) FROM review_item")}


def test_seed_then_clear_leaves_real_rows_and_no_demo_rows(database):
    ensure_default_prices()
    _real_calls(30)
    real_ids = [f"{i:032x}" for i in range(0, 30, 3)]
    assert len(queue_for_review(real_ids)) == 10
    with db.session() as s:  # a real workspace that happens to look synthetic, but someone joined it
        s.add(Workspace(id="cust-900", name="Synthetic customer 900", plan="paid", created_at=time.time()))
        s.flush()
        s.add(WorkspaceMember(workspace_id="cust-900", user_sub="real@acme.test", role="admin"))
        s.add(SupportConversation(customer_sub="real-customer@acme.test", status="open", created_at=time.time(),
                                  updated_at=time.time()))
        s.commit()
    before = _totals()

    settings = get_settings()
    insert_synthetic(1500, days=3, review_share=0.2, tiers=settings.tiers)
    assert ensure_customer_workspaces(5) == 5
    seed_demo_company(history=True)
    configured = {t.partition("/")[2] for chain in settings.tiers.values() for t in chain}
    with db.get_engine().connect() as conn:
        demo_models = set(conn.execute(text("SELECT DISTINCT model FROM request_log WHERE request_id LIKE 'demo-%'"))
                          .scalars())
        csat_models = set(conn.execute(text("SELECT DISTINCT model FROM support_conversation "
                                            "WHERE customer_sub LIKE 'demo-history:%' AND model <> 'classifier'"))
                          .scalars())
    assert demo_models and demo_models <= configured  # only models Keel is configured with
    assert {m.partition("/")[2] for m in csat_models} <= configured
    # the queue labels demo items and filters by source; demo items are varied, not a few canned pairs
    demo_items = review_queue(verdict=None, source="demo", limit=500)
    assert len(demo_items) == review_total(verdict=None, source="demo") > 100
    assert all(i["demo"] for i in demo_items)
    assert len({i["input_text"] for i in demo_items}) > len(demo_items) * 0.6
    live = review_queue(verdict=None, source="live", limit=500)
    assert {i["request_id"] for i in live} == set(real_ids) and not any(i["demo"] for i in live)
    page2 = review_queue(verdict=None, limit=20, offset=20)
    assert len(page2) == 20 and not {i["request_id"] for i in page2} & {
        i["request_id"] for i in review_queue(verdict=None, limit=20)}

    removed = clear()
    assert removed["request_log"] == 1500 and removed["workspaces"] == 5 and removed["support_conversations"] > 0
    after = _totals()
    assert after["log"][0] == before["log"][0] == 30 and after["log"][1] == pytest.approx(before["log"][1])
    assert after["time"][0] == before["time"][0] and after["time"][1] == pytest.approx(before["time"][1])
    assert after["time"][2] == before["time"][2]
    assert after["dims"] == before["dims"] and after["customer"] == before["customer"]
    assert after["review"] == before["review"] == (10,)
    with db.get_engine().connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM request_log WHERE request_id LIKE 'demo-%'")).scalar() == 0
        assert conn.execute(text("SELECT COUNT(*) FROM support_conversation WHERE customer_sub LIKE 'demo-history:%'")
                            ).scalar() == 0
        assert conn.execute(text("SELECT COUNT(*) FROM support_conversation")).scalar() == 1  # the real one
        assert set(conn.execute(text("SELECT id FROM workspace WHERE id LIKE 'cust-%'")).scalars()) == {"cust-900"}
        assert conn.execute(text("SELECT COUNT(*) FROM support_account")).scalar() == 12  # the bot's company stays
    assert clear() == {"request_log": 0, "review_item": 0, "support_conversations": 0, "workspaces": 0}
