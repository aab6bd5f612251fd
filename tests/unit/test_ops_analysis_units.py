"""Pure analysis helpers: Lorenz points, Gini, top shares, hour/weekday buckets, rollup drift measures, figures."""

from datetime import datetime, timezone

import pytest

from core.llm._rollup import aggregate, is_empty_output
from core.observe import Concentration, Drift, gini, hour_of_day_and_weekday, lorenz_points, paid_plan_usd, top_share
from core.observe._synthetic import CAPABLE_AFTER, CAPABLE_BEFORE, model_switch_time, synthetic_rows


def test_lorenz_points_on_a_hand_made_distribution():
    # 4 customers costing 1, 2, 3, 4 (total 10), given in any order
    points = lorenz_points([3, 1, 4, 2])
    expected = [(0, 0), (0.25, 0.1), (0.5, 0.3), (0.75, 0.6), (1, 1)]
    assert [x for x, _ in points] == pytest.approx([x for x, _ in expected])
    assert [y for _, y in points] == pytest.approx([y for _, y in expected])
    assert lorenz_points([]) == [(0.0, 0.0), (1.0, 1.0)]


def test_gini_matches_the_mean_absolute_difference_formula():
    values = [1, 2, 3, 4]
    n, mean = len(values), sum(values) / len(values)
    expected = sum(abs(a - b) for a in values for b in values) / (2 * n * n * mean)
    assert expected == pytest.approx(0.25)
    assert gini(values) == pytest.approx(expected)
    assert gini([5, 5, 5, 5]) == pytest.approx(0.0)
    assert gini([0, 0, 0, 10]) == pytest.approx(0.75)  # one of n customers pays all: (n - 1) / n
    assert gini([]) == 0.0 and gini([0, 0]) == 0.0


def test_top_shares():
    costs = [100.0] + [1.0] * 99  # 100 customers, one costs as much as the other 99 together + 1
    assert top_share(costs, 0.01) == pytest.approx(100 / 199)
    assert top_share(costs, 0.10) == pytest.approx((100 + 9) / 199)
    assert top_share([3.0], 0.01) == 1.0  # at least one customer
    assert top_share([], 0.1) == 0.0


@pytest.mark.parametrize("iso, hod, weekday", [
    ("1970-01-01T00:00:00", 0, 3),   # a Thursday
    ("2026-11-23T14:30:00", 14, 0),  # a Monday
    ("2026-11-29T23:59:59", 23, 6),  # a Sunday
])
def test_hour_of_day_and_weekday_in_utc(iso, hod, weekday):
    t = datetime.fromisoformat(iso).replace(tzinfo=timezone.utc)
    assert t.weekday() == weekday
    assert hour_of_day_and_weekday(int(t.timestamp() // 3600)) == (hod, weekday)


def test_paid_plan_price_is_configurable(monkeypatch):
    monkeypatch.delenv("KEEL_PAID_PLAN_USD", raising=False)
    assert paid_plan_usd() == 20.0
    monkeypatch.setenv("KEEL_PAID_PLAN_USD", "49.5")
    assert paid_plan_usd() == 49.5


def _row(**kw):
    base = dict(created_at=7200.5, feature="f", model="m", tier="t", prompt_version=None, status="ok",
                cost_usd=0.0, tokens_in=1, tokens_out=5, latency_ms=1.0, ttft_ms=None, refusal=False,
                json_valid=None, output_text="hi")
    return base | kw


def test_rollup_folds_drift_measures():
    rows = [_row(json_valid=True), _row(json_valid=False), _row(json_valid=None, refusal=True),
            _row(tokens_out=0, output_text=""), _row(output_text="   ", tokens_out=3),
            _row(status="error", tokens_out=0, output_text=None)]
    assert [is_empty_output(r) for r in rows] == [False, False, False, True, True, False]
    keys = ("hour", "feature", "model", "tier", "prompt_version", "status")
    out = {r["status"]: r for r in aggregate(rows, keys, drift=True)}
    ok = out["ok"]
    assert (ok["n"], ok["refusals"], ok["json_asked"], ok["json_valid"], ok["empty_outputs"]) == (5, 1, 2, 1, 2)
    assert ok["hour"] == 2 and ok["prompt_version"] == ""
    assert "json_asked" not in aggregate(rows, ("hour", "status"))[0]


def test_synthetic_traffic_plants_a_model_change_with_drift():
    end = 1_700_000_000.0
    rows = synthetic_rows(6000, days=10, end=end, seed=11)
    switch = model_switch_time(days=10, end=end)
    capable = [r for r in rows if r["tier"] == "capable"]
    before = [r for r in capable if r["created_at"] < switch]
    after = [r for r in capable if r["created_at"] >= switch]
    assert {r["model"] for r in before} == {CAPABLE_BEFORE[1]} and {r["model"] for r in after} == {CAPABLE_AFTER[1]}
    rate = lambda rs: sum(r["refusal"] for r in rs) / len(rs)  # noqa: E731
    assert rate(after) > 3 * rate(before)
    asked = lambda rs: [r for r in rs if r["json_valid"] is not None]  # noqa: E731
    valid = lambda rs: sum(r["json_valid"] for r in asked(rs)) / len(asked(rs))  # noqa: E731
    assert valid(after) < valid(before) - 0.05
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["customer"]] = counts.get(r["customer"], 0) + 1
    ranked = sorted(counts.values(), reverse=True)
    assert ranked[0] > 10 * ranked[len(ranked) // 2]  # power-law spread


def test_figures_build_from_analysis_data():
    from ui import charts

    conc = Concentration(
        customers=[{"customer": "a", "plan": "free", "requests": 3, "cost_usd": 2.0, "revenue_usd": 0.0,
                    "margin_usd": -2.0, "over_cost": True},
                   {"customer": "b", "plan": "paid", "requests": 1, "cost_usd": 1.0, "revenue_usd": 5.0,
                    "margin_usd": 4.0, "over_cost": False}],
        total_cost_usd=3.0, top1_share=2 / 3, top10_share=2 / 3, gini=gini([2, 1]), lorenz=lorenz_points([2, 1]),
        over_cost=1, paid_plan_usd=20.0, window_hours=24 * 7)
    fig = charts.lorenz(conc)
    assert not fig.layout.annotations  # two customers have no meaningful top 1% or top 10%
    scatter = charts.cost_vs_revenue(conc)
    assert [t.name for t in scatter.data][:2] == ["covered by plan", "costs more than it pays"]
    assert list(scatter.data[1].y) == [2.0]
    heat = charts.weekday_heatmap([[0.5] * 24 for _ in range(7)], "Errors", percent=True)
    assert heat.data[0].z[0][0] == 50
    drift = Drift(by="model", series={"m": [{"day_start": 0.0, "refusal_rate": 0.1, "json_valid_rate": None,
                                             "empty_rate": 0.0, "tokens_out_avg": 5.0}]},
                  changes=[{"day_start": 0.0, "tier": "capable", "from": "a", "to": "b"}])
    fig = charts.drift(drift, "refusal_rate")
    assert list(fig.data[0].y) == [10.0] and len(fig.layout.shapes) == 1
