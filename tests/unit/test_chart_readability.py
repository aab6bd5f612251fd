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


def test_lorenz_labels_point_from_different_places():
    fig = charts.lorenz(_conc([1.0 / (i + 1) for i in range(200)]))
    labels = {a.text.split(":")[0]: (a.ax, a.ay) for a in fig.layout.annotations}
    assert set(labels) == {"top 1%", "top 10%"}
    (ax1, ay1), (ax10, ay10) = labels["top 1%"], labels["top 10%"]
    assert abs(ay1 - ay10) >= 40 or abs(ax1 - ax10) >= 40  # never on top of each other, even at equal shares
    assert not charts.lorenz(_conc([0.5, 0.25])).layout.annotations  # too few customers for a top 1%/10%


def test_money_axes_are_in_dollars_not_si_prefixes():
    fig = charts.cost_vs_revenue(_conc([6e-7, 3e-7]))
    for axis in (fig.layout.xaxis, fig.layout.yaxis):
        assert axis.tickprefix == "$" and axis.exponentformat == "none"


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
