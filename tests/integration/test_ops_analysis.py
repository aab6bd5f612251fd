"""Analysis reads (cost concentration, time of day, capability drift) on known data, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import pytest
from sqlalchemy import text

from core import db
from core.config import get_settings
from core.llm import latency_bucket, record_log_rows
from core.observe import Window, capability_drift, cost_concentration, gini, lorenz_points, time_of_day
from core.observe._synthetic import CAPABLE_AFTER, CAPABLE_BEFORE, insert_synthetic, model_switch_time
from core.tables import Workspace

# A Monday, 00:00 UTC; the windows below all end within the following weeks.
MONDAY = datetime(2026, 11, 2, tzinfo=timezone.utc).timestamp()


def _row(t: float, **kw) -> dict:
    row = dict(
        request_id=uuid.uuid4().hex, attempt=0, created_at=t, feature="support", task="classify", prompt_id=None,
        prompt_version="v1", tier="capable", provider="openai", model="old", user="u", customer="acme",
        input_text=None, output_text="ok", tokens_in=10, tokens_out=20, ttft_ms=100.0, latency_ms=200.0,
        latency_bucket=latency_bucket(200.0), cost_usd=0.0, status="ok", error=None, refusal=False, json_valid=None,
    )
    row.update(kw)
    if "latency_ms" in kw:
        row["latency_bucket"] = latency_bucket(kw["latency_ms"])
    return row


def _write(rows: list[dict]) -> None:
    with db.get_engine().begin() as conn:
        record_log_rows(conn, rows)


def _week() -> Window:
    return Window(first_hour=int(MONDAY // 3600), last_hour=int(MONDAY // 3600) + 24 * 7 - 1)


def test_cost_concentration_top_shares_lorenz_and_gini(database):
    # 100 customers: c000 costs $100, the 99 others $1 each, spread over two rows each in the window.
    rows = []
    for i in range(100):
        cost = 100.0 if i == 0 else 1.0
        for k in range(2):
            rows.append(_row(MONDAY + 3600 * (i % 50) + k * 86400, customer=f"c{i:03d}", cost_usd=cost / 2))
    rows.append(_row(MONDAY + 60, customer=None, cost_usd=50.0))  # no customer: left out
    rows.append(_row(MONDAY - 3600, customer="c001", cost_usd=999.0))  # before the window
    _write(rows)
    conc = cost_concentration(_week(), paid_usd=30.0)
    assert len(conc.customers) == 100
    assert conc.customers[0]["customer"] == "c000" and conc.customers[0]["cost_usd"] == pytest.approx(100.0)
    assert conc.total_cost_usd == pytest.approx(199.0)
    assert conc.top1_share == pytest.approx(100 / 199)
    assert conc.top10_share == pytest.approx(109 / 199)
    assert conc.lorenz[0] == (0.0, 0.0) and conc.lorenz[-1] == (1.0, 1.0)
    assert conc.lorenz[99] == pytest.approx((0.99, 99 / 199))  # the 99 cheapest customers pay 99 of 199
    assert conc.gini == pytest.approx(gini([100.0] + [1.0] * 99))
    assert conc.gini == pytest.approx(1 - 2 * sum(
        (x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in zip(conc.lorenz, conc.lorenz[1:])))


def test_lorenz_points_from_the_database_match_a_hand_made_distribution(database):
    _write([_row(MONDAY + 3600 * i, customer=name, cost_usd=cost)
            for i, (name, cost) in enumerate((("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0)))])
    conc = cost_concentration(_week())
    expected = [(0, 0), (0.25, 0.1), (0.5, 0.3), (0.75, 0.6), (1, 1)]
    assert [x for x, _ in conc.lorenz] == pytest.approx([x for x, _ in expected])
    assert [y for _, y in conc.lorenz] == pytest.approx([y for _, y in expected])
    assert conc.gini == pytest.approx(0.25)
    assert conc.top1_share == pytest.approx(0.4)  # 1% of 4 customers rounds up to the top one
    assert lorenz_points([c["cost_usd"] for c in conc.customers]) == conc.lorenz


def test_cost_against_pro_rated_plan_revenue(database, monkeypatch):
    monkeypatch.setenv("KEEL_PAID_PLAN_USD", "72")  # $72 / 720 h = $0.10 per hour → $16.80 per week
    with db.session() as s:
        s.add(Workspace(id="payer", name="Payer", plan="paid"))
        s.add(Workspace(id="freeloader", name="Free", plan="free"))
        s.add(Workspace(id="heavy", name="Heavy", plan="paid"))
    _write([_row(MONDAY + 100, customer="payer", cost_usd=1.0),
            _row(MONDAY + 200, customer="freeloader", cost_usd=0.01),
            _row(MONDAY + 300, customer="heavy", cost_usd=20.0),
            _row(MONDAY + 400, customer="cust-999", cost_usd=0.5)])  # no workspace row: free
    conc = cost_concentration(_week())
    by = {c["customer"]: c for c in conc.customers}
    assert conc.paid_plan_usd == 72.0 and conc.window_hours == 168
    assert by["payer"]["revenue_usd"] == pytest.approx(16.8) and not by["payer"]["over_cost"]
    assert by["heavy"]["revenue_usd"] == pytest.approx(16.8) and by["heavy"]["over_cost"]
    assert by["heavy"]["margin_usd"] == pytest.approx(-3.2)
    assert by["freeloader"]["revenue_usd"] == 0 and by["freeloader"]["over_cost"]
    assert by["cust-999"]["plan"] == "free" and by["cust-999"]["over_cost"]
    assert conc.over_cost == 3


def test_time_of_day_buckets_by_utc_hour_and_weekday(database):
    tue_14 = MONDAY + 86400 + 14 * 3600
    rows = [_row(tue_14 + 60 * i, latency_ms=100.0, ttft_ms=40.0) for i in range(18)]
    rows += [_row(tue_14 + 1200, latency_ms=5000.0, ttft_ms=None, status="error"),
             _row(tue_14 + 1300, latency_ms=5000.0, ttft_ms=70.0, status="fallback")]
    rows += [_row(tue_14 + 7 * 86400 + 30, latency_ms=100.0, ttft_ms=40.0) for _ in range(20)]  # next Tuesday
    rows += [_row(MONDAY + 6 * 86400 + 23 * 3600 + 5, latency_ms=300.0, ttft_ms=10.0)]  # Sunday 23:00
    rows += [_row(MONDAY + 2 * 86400 + 3 * 3600 + i, latency_ms=100.0 if i < 9 else 4000.0) for i in range(10)]
    _write(rows)
    window = Window(first_hour=int(MONDAY // 3600), last_hour=int(MONDAY // 3600) + 24 * 14 - 1)
    tod = time_of_day(window)
    cell = tod.cell(1, 14)
    assert cell["requests"] == 40
    assert cell["error_rate"] == pytest.approx(1 / 40) and cell["fallback_rate"] == pytest.approx(1 / 40)
    assert cell["ttft_avg_ms"] == pytest.approx((38 * 40.0 + 70.0) / 39)
    assert cell["latency_p95_ms"] == pytest.approx(100.0, rel=0.06)  # 2 of 40 at 5 s: the 38th is still fast
    assert tod.cell(6, 23)["requests"] == 1 and tod.cell(6, 23)["latency_p95_ms"] == pytest.approx(300, rel=0.06)
    assert tod.cell(2, 3)["latency_p95_ms"] == pytest.approx(4000.0, rel=0.06)  # Wednesday 03:00: 1 of 10 slow
    assert tod.cell(0, 14)["requests"] == 0 and tod.cell(0, 14)["latency_p95_ms"] is None
    assert sum(map(sum, tod.requests)) == len(rows)


def test_refusal_rate_of_a_planted_drift(database):
    rows = []
    for day in range(6):
        model = "old" if day < 3 else "new"
        refusals = 2 if model == "old" else 15
        for i in range(100):
            t = MONDAY + day * 86400 + 600 * i
            asks_json = i < 40
            rows.append(_row(t, model=model, refusal=i < refusals,
                             json_valid=(i < (38 if model == "old" else 30)) if asks_json else None,
                             tokens_out=0 if (model == "new" and 90 <= i < 95) else 20,
                             prompt_version="v1" if day < 5 else "v2"))
    rows.append(_row(MONDAY + 86400, model="old", status="error", tokens_out=0))  # errors are not empty outputs
    _write(rows)
    drift = capability_drift(_week())
    assert set(drift.series) == {"old", "new"}
    old, new = drift.series["old"], drift.series["new"]
    assert [p["day_start"] for p in old] == [MONDAY + d * 86400 for d in range(3)]
    assert [p["refusal_rate"] for p in new] == pytest.approx([0.15] * 3)
    assert old[0]["refusal_rate"] == pytest.approx(0.02) and old[1]["refusal_rate"] == pytest.approx(2 / 101)
    assert [p["json_valid_rate"] for p in old] == pytest.approx([0.95] * 3)
    assert [p["json_valid_rate"] for p in new] == pytest.approx([0.75] * 3)
    assert [p["empty_rate"] for p in new] == pytest.approx([0.05] * 3) and old[1]["empty_rate"] == 0
    assert new[0]["tokens_out_avg"] == pytest.approx(95 * 20 / 100)
    assert drift.changes == [{"day_start": MONDAY + 3 * 86400, "tier": "capable", "from": "old", "to": "new"}]
    by_prompt = capability_drift(_week(), by="prompt_version")
    assert set(by_prompt.series) == {"v1", "v2"} and len(by_prompt.series["v2"]) == 1
    assert capability_drift(_week(), feature="nope").series == {}


def test_synthetic_traffic_shows_the_planted_model_change(database):
    end = MONDAY + 10 * 86400
    insert_synthetic(6000, days=10, end=end, seed=5)
    window = Window(first_hour=int((end - 10 * 86400) // 3600), last_hour=int(end // 3600))
    drift = capability_drift(window, tier="capable")
    assert set(drift.series) == {CAPABLE_BEFORE[1], CAPABLE_AFTER[1]}
    with db.get_engine().connect() as conn:
        raw = dict(conn.execute(text(
            "SELECT model, AVG(CASE WHEN refusal THEN 1.0 ELSE 0.0 END) FROM request_log "
            "WHERE tier = 'capable' GROUP BY model")).all())

    def pooled(points, measure, weight="requests"):
        return sum(p[measure] * p[weight] for p in points) / sum(p[weight] for p in points)

    before, after = (drift.series[m[1]] for m in (CAPABLE_BEFORE, CAPABLE_AFTER))
    assert pooled(before, "refusal_rate") == pytest.approx(float(raw[CAPABLE_BEFORE[1]]))
    assert pooled(after, "refusal_rate") == pytest.approx(float(raw[CAPABLE_AFTER[1]]))
    assert pooled(after, "refusal_rate") > 3 * pooled(before, "refusal_rate")
    assert pooled(after, "json_valid_rate", "json_asked") < pooled(before, "json_valid_rate", "json_asked") - 0.05
    switch_day = int(model_switch_time(days=10, end=end) // 86400) * 86400
    assert [c["day_start"] for c in drift.changes] in ([switch_day], [switch_day + 86400])


def test_demo_traffic_command_writes_rows_rollups_and_workspaces(database, capsys):
    from core.cli import main

    assert main(["demo", "traffic", "--days", "4", "--rows", "1500", "--customers", "50", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["rows"] == 1500 and out["workspaces_created"] == 50 and out["demo"] is True
    # demo rows name only the configured models (the embedded one by default): never gpt-4o & co.
    configured = {t.partition("/")[2] for chain in get_settings().tiers.values() for t in chain}
    assert set(out["models"]) == configured
    with db.get_engine().connect() as conn:
        logged = {m for (m,) in conn.execute(text("SELECT DISTINCT model FROM request_log"))}
        demo_ids = conn.execute(text("SELECT COUNT(*) FROM request_log WHERE request_id LIKE 'demo-%'")).scalar()
        n = conn.execute(text("SELECT COUNT(*) FROM request_log")).scalar()
    assert logged == configured and CAPABLE_BEFORE[1] not in logged and CAPABLE_AFTER[1] not in logged
    assert demo_ids == 1500  # every row is marked demo, so pages label it and `keel demo clear` finds it
    with db.get_engine().connect() as conn:
        rolled = conn.execute(text("SELECT SUM(n), SUM(json_asked) FROM log_rollup_dims")).one()
        plans = dict(conn.execute(text(
            "SELECT plan, COUNT(*) FROM workspace WHERE id LIKE 'cust-%' GROUP BY plan")).all())
    assert n == rolled[0] == 1500 and rolled[1] > 0
    assert set(plans) == {"free", "paid"} and sum(plans.values()) == 50
    conc = cost_concentration(Window.last(24 * 5))
    assert conc.top10_share > 0.3 and any(c["plan"] == "paid" for c in conc.customers)
