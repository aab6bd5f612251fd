"""Charts stay readable with little data (issue 19 #9): labels that do not print over each other, money axes in
dollars, colour scales that start at zero, day ticks for daily series, and demo data labelled as such."""

from __future__ import annotations

from core.observe import Concentration, Drift, gini, lorenz_points
from ui import charts
from ui.demo import label_demo

DAY = 86400.0


def _conc(costs: list[float]) -> Concentration:
    customers = [{"customer": f"c{i}", "plan": "free", "requests": 1, "cost_usd": c, "revenue_usd": 0.0,
                  "margin_usd": -c, "over_cost": True} for i, c in enumerate(sorted(costs, reverse=True))]
    total = sum(costs)
    ranked = sorted(costs, reverse=True)
    return Concentration(customers=customers, total_cost_usd=total, top1_share=sum(ranked[:max(1, len(ranked) // 100)]) / total,
                         top10_share=sum(ranked[:max(1, len(ranked) // 10)]) / total, gini=gini(costs),
                         lorenz=lorenz_points(costs), over_cost=len(costs), paid_plan_usd=20.0, window_hours=24)


def test_lorenz_shares_sit_in_one_box_not_on_each_other():
    fig = charts.lorenz(_conc([1.0 / (i + 1) for i in range(200)]))
    (box,) = fig.layout.annotations  # one label for both shares: two arrows to close points overlapped
    assert "top 1% of customers" in box.text and "top 10% of customers" in box.text
    assert list(fig.data[-1].text) == ["top 1%", "top 10%"]  # markers at the cuts on the curve
    assert not charts.lorenz(_conc([0.5, 0.25])).layout.annotations  # too few customers for a top 1%/10%


def test_money_axes_are_in_dollars_not_si_prefixes():
    fig = charts.cost_vs_revenue(_conc([6e-7, 3e-7]))
    for axis in (fig.layout.xaxis, fig.layout.yaxis):
        assert axis.tickprefix == "$" and axis.exponentformat == "none"
    assert fig.layout.yaxis.range[1] < 1e-6  # the cost axis fits the costs


def test_cost_axis_fits_costs_not_the_plan_price():
    conc = _conc([0.2, 0.1])
    conc.customers[0].update(plan="paid", revenue_usd=20.0, over_cost=False)
    fig = charts.cost_vs_revenue(conc)
    assert fig.layout.yaxis.range[1] == 0.2 * 1.15 and fig.layout.xaxis.range[1] > 20


def test_heatmap_scales_start_at_zero():
    one_cell = [[None] * 24 for _ in range(7)]
    one_cell[6][21] = 2456.3
    heat = charts.weekday_heatmap(one_cell, "Latency p95 (ms)")
    assert heat.data[0].zmin == 0 and heat.data[0].zmax >= 2456.3
    zeros = charts.weekday_heatmap([[0.0] * 24 for _ in range(7)], "Error rate (%)", percent=True)
    assert zeros.data[0].zmin == 0 and zeros.data[0].zmax >= 1  # not -0.5 … 0.5


def test_drift_of_one_day_has_day_ticks_and_an_empty_measure_says_so():
    day = 20_000 * DAY
    point = {"day_start": day, "refusal_rate": 0.0, "json_valid_rate": None, "empty_rate": 0.0, "tokens_out_avg": 9}
    drift = Drift(by="model", series={"smollm2-135m-instruct": [point]}, changes=[])
    fig = charts.drift(drift, "refusal_rate")
    assert fig.layout.xaxis.tickformat == "%b %d" and fig.layout.xaxis.dtick == 86400000
    low, high = fig.layout.xaxis.range
    assert (high - low).days == 2  # a day either side, not a 1-millisecond axis
    empty = charts.drift(drift, "json_valid_rate")
    assert any("no calls" in a.text for a in empty.layout.annotations)


def test_demo_label_goes_under_the_title():
    fig = charts.weekday_heatmap([[1.0] * 24 for _ in range(7)], "Latency p95 (ms)")
    top = fig.layout.margin.t
    labelled = label_demo(fig, True)
    assert "includes demo data" in labelled.layout.title.text and labelled.layout.margin.t > top
    assert "demo" not in label_demo(charts.weekday_heatmap([[1.0] * 24 for _ in range(7)], "X"), False).layout.title.text


def test_dashboard_money_in_dollars_and_whole_requests():
    series = [{"bucket_start": 20_000 * DAY + h * 3600, "requests": r, "cost_usd": 2.7e-6 * r}
              for h, r in enumerate([0, 0, 2])]
    fig = charts.volume_and_cost(series)
    assert fig.layout.yaxis2.tickprefix == "$" and fig.layout.yaxis2.exponentformat == "none"
    assert fig.layout.yaxis.dtick == 1  # 2 requests: ticks 0, 1, 2, not 0.5 and 1.5
    rows = [{"model": "smollm2-135m-instruct", "cost_usd": 4e-6, "requests": 1}]
    breakdown = charts.breakdown(rows, "model")
    assert breakdown.layout.xaxis.tickprefix == "$" and breakdown.layout.xaxis2.dtick == 1
