"""Plotly figures for the Dashboard, built from `core.observe.Dashboard` data and nothing else."""

from __future__ import annotations

from datetime import datetime, timezone

import plotly.graph_objects as go
from plotly.subplots import make_subplots

_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), height=320, legend=dict(orientation="h", y=-0.2),
               hovermode="x unified")


# Dollars with a $ and no SI prefixes: "600n" or "5.36µ" on a money axis reads as nonsense.
_USD_AXIS = dict(tickprefix="$", exponentformat="none")


def _count_axis(values) -> dict:
    """Whole numbers on a count axis: with few calls plotly would print 0.5 and 1.5 requests."""
    top = max([v for v in values if v is not None] + [0])
    return dict(tick0=0, dtick=1 if top <= 5 else 2) if top <= 10 else {}


def _times(series: list[dict]) -> list[datetime]:
    return [datetime.fromtimestamp(p["bucket_start"], tz=timezone.utc) for p in series]


def volume_and_cost(series: list[dict]) -> go.Figure:
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    x = _times(series)
    fig.add_bar(x=x, y=[p["requests"] for p in series], name="requests", marker_color="#5B8FF9")
    fig.add_scatter(x=x, y=[p["cost_usd"] for p in series], name="cost (USD)", mode="lines+markers",
                    line=dict(color="#F6903D"), secondary_y=True)
    fig.update_layout(title="Requests and cost", **_LAYOUT)
    fig.update_yaxes(title_text="requests", secondary_y=False)
    fig.update_yaxes(title_text="USD", secondary_y=True, rangemode="tozero", **_USD_AXIS)
    fig.update_yaxes(rangemode="tozero", secondary_y=False, **_count_axis([p["requests"] for p in series]))
    return fig


def tokens(series: list[dict]) -> go.Figure:
    x = _times(series)
    fig = go.Figure()
    fig.add_bar(x=x, y=[p["tokens_in"] for p in series], name="tokens in", marker_color="#61DDAA")
    fig.add_bar(x=x, y=[p["tokens_out"] for p in series], name="tokens out", marker_color="#65789B")
    fig.update_layout(title="Tokens", barmode="stack", **_LAYOUT)
    return fig


def latency(series: list[dict]) -> go.Figure:
    x = _times(series)
    fig = go.Figure()
    for p, color in ((50, "#5AD8A6"), (95, "#F6BD16"), (99, "#E8684A")):
        fig.add_scatter(x=x, y=[s[f"latency_p{p}_ms"] for s in series], name=f"latency p{p}",
                        mode="lines+markers", line=dict(color=color))
    fig.add_scatter(x=x, y=[s["ttft_avg_ms"] for s in series], name="time to first token (avg)",
                    mode="lines+markers", line=dict(color="#6DC8EC", dash="dot"))
    fig.update_layout(title="Latency and time to first token (ms)", **_LAYOUT)
    return fig


def error_rates(series: list[dict]) -> go.Figure:
    x = _times(series)
    fig = go.Figure()
    fig.add_scatter(x=x, y=[100 * p["error_rate"] for p in series], name="errors %", mode="lines+markers",
                    line=dict(color="#E8684A"))
    fig.add_scatter(x=x, y=[100 * p["fallback_rate"] for p in series], name="fallbacks %", mode="lines+markers",
                    line=dict(color="#9270CA"))
    fig.update_layout(title="Error and fallback rate (%)", **_LAYOUT)
    fig.update_yaxes(rangemode="tozero")
    return fig


def breakdown(rows: list[dict], dimension: str, top: int = 15) -> go.Figure:
    rows = rows[:top]
    labels = [str(r[dimension]) for r in rows][::-1]
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, subplot_titles=("cost (USD)", "requests"))
    fig.add_bar(y=labels, x=[r["cost_usd"] for r in rows][::-1], orientation="h", marker_color="#F6903D",
                name="cost", row=1, col=1)
    fig.add_bar(y=labels, x=[r["requests"] for r in rows][::-1], orientation="h", marker_color="#5B8FF9",
                name="requests", row=1, col=2)
    fig.update_layout(title=f"By {dimension.replace('_', ' ')} (top {len(rows)} by cost)", showlegend=False,
                      **{**_LAYOUT, "height": max(260, 28 * len(rows) + 100)})
    fig.update_xaxes(row=1, col=1, **_USD_AXIS)
    fig.update_xaxes(row=1, col=2, **_count_axis([r["requests"] for r in rows]))
    return fig


# ---------------------------------------------------------------------------------------------------------
# Analysis page: built from `core.observe.Concentration`, `TimeOfDay` and `Drift`.

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_PLAIN = dict(margin=dict(l=10, r=10, t=40, b=10), height=360, legend=dict(orientation="h", y=-0.2))


def lorenz(conc) -> go.Figure:
    """Lorenz curve of cost per customer, the equality line, and the top-1% / top-10% shares annotated."""
    xs = [100 * x for x, _ in conc.lorenz]
    ys = [100 * y for _, y in conc.lorenz]
    fig = go.Figure()
    fig.add_scatter(x=[0, 100], y=[0, 100], name="equal spend", mode="lines", line=dict(color="#BFBFBF", dash="dash"))
    fig.add_scatter(x=xs, y=ys, name=f"customers (Gini {conc.gini:.2f})", mode="lines", line=dict(color="#5B8FF9"),
                    fill="tonexty", fillcolor="rgba(91,143,249,0.12)")
    # The shares go in one box in the empty upper-left corner, with a marker on the curve at each cut: two arrows
    # to nearby points printed their labels over each other. A "top 1%" needs at least 100 customers to mean
    # anything (10 for the top 10%).
    marks = [(conc.top10_share, "top 10%", 90)] if len(conc.customers) >= 10 else []
    if len(conc.customers) >= 100:
        marks.insert(0, (conc.top1_share, "top 1%", 99))
    if marks:
        fig.add_scatter(x=[cut for _, _, cut in marks], y=[100 * (1 - share) for share, _, _ in marks],
                        mode="markers+text", text=[label for _, label, _ in marks], textposition="middle left",
                        marker=dict(color="#E8684A", size=9), showlegend=False, hoverinfo="skip")
        fig.add_annotation(x=0.02, y=0.98, xref="paper", yref="paper", xanchor="left", yanchor="top",
                           showarrow=False, align="left", bgcolor="rgba(255,255,255,0.9)", bordercolor="#D9D9D9",
                           text="<br>".join(f"{label} of customers: {100 * share:.0f}% of cost"
                                            for share, label, _ in marks))
    fig.update_layout(title="Cost concentration (Lorenz curve)", xaxis_title="% of customers (cheapest first)",
                      yaxis_title="% of cost", **_PLAIN)
    fig.update_xaxes(range=[0, 100])
    fig.update_yaxes(range=[0, 100])
    return fig


def cost_vs_revenue(conc) -> go.Figure:
    """One point per customer: cost against pro-rated plan revenue; those above the diagonal cost more than they pay."""
    fig = go.Figure()
    for over, name, color in ((False, "covered by plan", "#5AD8A6"), (True, "costs more than it pays", "#E8684A")):
        pts = [c for c in conc.customers if c["over_cost"] == over]
        fig.add_scatter(x=[c["revenue_usd"] for c in pts], y=[c["cost_usd"] for c in pts], mode="markers", name=name,
                        marker=dict(color=color, size=8, opacity=0.8),
                        text=[f"{c['customer']} ({c['plan']}): {c['requests']:,} requests" for c in pts],
                        hovertemplate="%{text}<br>revenue $%{x:.2f}<br>cost $%{y:.4f}<extra></extra>")
    top_cost = max([c["cost_usd"] for c in conc.customers] + [0.0])
    top_revenue = max([c["revenue_usd"] for c in conc.customers] + [0.0])
    top = max(top_cost, top_revenue)
    if top > 0:
        fig.add_scatter(x=[0, top], y=[0, top], mode="lines", name="cost = revenue",
                        line=dict(color="#BFBFBF", dash="dash"))
    if top_cost > 0:  # the cost axis fits the costs: cents against a $20 plan would all sit on the floor
        fig.update_yaxes(range=[0, top_cost * 1.15])
    if top_revenue > 0:
        fig.update_xaxes(range=[-top_revenue * 0.04, top_revenue * 1.06])
    fig.update_layout(title="Cost vs plan revenue per customer", xaxis_title="plan revenue (USD, pro-rated)",
                      yaxis_title="LLM cost (USD)", **_PLAIN)
    fig.update_xaxes(**{k: v for k, v in _USD_AXIS.items() if k != "rangemode"})
    fig.update_yaxes(**{k: v for k, v in _USD_AXIS.items() if k != "rangemode"})
    return fig


def weekday_heatmap(grid: list[list], title: str, *, percent: bool = False, colorscale: str = "YlOrRd") -> go.Figure:
    """A weekday (rows) × UTC hour (columns) heatmap from a `TimeOfDay` grid."""
    z = [[None if v is None else (100 * v if percent else v) for v in row] for row in grid]
    top = max((v for row in z for v in row if v is not None), default=0)
    # The scale starts at 0 (a rate is never negative) and spans at least 1 unit, so one cell or all-zero rates
    # do not get a scale of -0.5…0.5 or 2,455.8…2,456.8.
    fig = go.Figure(go.Heatmap(z=z, x=[f"{h:02d}" for h in range(24)], y=list(_WEEKDAYS), colorscale=colorscale,
                               zmin=0, zmax=max(top, 100 if percent and top > 50 else 1),
                               hoverongaps=False, colorbar=dict(title="%" if percent else "")))
    fig.update_xaxes(type="category", dtick=3)
    fig.update_layout(title=title, xaxis_title="hour of day (UTC)", **{**_PLAIN, "height": 300})
    fig.update_yaxes(autorange="reversed")
    return fig


_DRIFT_METRICS = {
    "refusal_rate": ("Refusal rate (%)", True),
    "json_valid_rate": ("JSON-valid rate (% of calls asking for JSON)", True),
    "empty_rate": ("Empty output rate (%)", True),
    "tokens_out_avg": ("Mean output length (tokens)", False),
}


def drift(drift_data, metric: str) -> go.Figure:
    """One line per model (or prompt version) per day, with a dashed marker where a tier's model changed."""
    title, percent = _DRIFT_METRICS[metric]
    fig = go.Figure()
    for key, points in sorted(drift_data.series.items()):
        fig.add_scatter(x=[datetime.fromtimestamp(p["day_start"], tz=timezone.utc) for p in points],
                        y=[None if p[metric] is None else (100 * p[metric] if percent else p[metric]) for p in points],
                        name=key, mode="lines+markers", connectgaps=False)
    by_day: dict[float, list[str]] = {}  # one marker per day, its changes stacked in one label (no overlap)
    for change in drift_data.changes:
        by_day.setdefault(change["day_start"], []).append(f"{change['tier']}: {change['from']} → {change['to']}")
    rows = 1
    for i, (day, labels) in enumerate(sorted(by_day.items())):
        x = datetime.fromtimestamp(day, tz=timezone.utc)
        fig.add_shape(type="line", x0=x, x1=x, y0=0, y1=1, yref="paper", line=dict(color="#9270CA", dash="dash"))
        # neighbouring markers alternate between two heights, so labels of close days do not sit on each other
        shift = (i % 2) * 14 * (len(labels) + 1) if len(by_day) > 1 else 0
        rows = max(rows, len(labels) * (2 if len(by_day) > 1 else 1))
        fig.add_annotation(x=x, y=1, yref="paper", showarrow=False, yanchor="bottom", yshift=shift,
                           text="<br>".join(labels), font=dict(size=10), bgcolor="rgba(255,255,255,0.85)")
    fig.update_layout(title=title, showlegend=True, **_LAYOUT)  # a single line still names its model
    if by_day:  # room above the plot for the stacked labels, under the title
        fig.update_layout(margin=dict(t=60 + 14 * rows))
    fig.update_yaxes(rangemode="tozero")
    days = sorted({p["day_start"] for points in drift_data.series.values() for p in points if p[metric] is not None})
    # days, not the milliseconds plotly picks when there is a single day to show
    fig.update_xaxes(type="date", tickformat="%b %d", hoverformat="%Y-%m-%d")
    if days:
        step = max(1, round((days[-1] - days[0]) / 86400 / 7))  # about a week of labels, each a whole day
        fig.update_xaxes(dtick=86400000 * step)
    if days and days[-1] - days[0] < 3 * 86400:
        span = [datetime.fromtimestamp(d, tz=timezone.utc) for d in (days[0] - 86400, days[-1] + 86400)]
        fig.update_xaxes(range=span)
    if not days:
        fig.add_annotation(text="no calls with this measure in the window", x=0.5, y=0.5, xref="paper",
                           yref="paper", showarrow=False, font=dict(color="#8C8C8C"))
        fig.update_xaxes(showticklabels=False)
        fig.update_yaxes(showticklabels=False)
    return fig


_STATUS_COLOURS = {"passed": "#2E7D32", "failed": "#C62828", "error": "#6D4C41", "running": "#9E9E9E"}


def eval_scores_over_time(runs: list[dict]) -> go.Figure:
    """One line per suite; each run a marker coloured by its verdict, so a failed run stands out."""
    fig = go.Figure()
    by_suite: dict[str, list[dict]] = {}
    for run in sorted(runs, key=lambda r: r["started_at"]):
        if run["score"] is not None:
            by_suite.setdefault(run["suite"], []).append(run)
    for suite, items in by_suite.items():
        fig.add_scatter(
            x=[datetime.fromtimestamp(r["started_at"], tz=timezone.utc) for r in items],
            y=[100 * r["score"] for r in items], name=suite, mode="lines+markers",
            marker=dict(size=10, color=[_STATUS_COLOURS.get(r["status"], "#9E9E9E") for r in items],
                        line=dict(width=1, color="white")),
            text=[f"run {r['id']} · {r['model'] or ''} · {r['status']}" for r in items],
            hovertemplate="%{text}<br>score %{y:.1f}%<extra>" + suite + "</extra>",
        )
    fig.update_layout(title="Suite scores over time (red marker = failed run)", **(_LAYOUT | {"hovermode": "closest"}))
    fig.update_yaxes(title_text="score (%)", range=[0, 105])
    return fig


def eval_segments(run_a: dict, run_b: dict) -> go.Figure:
    """Segment scores of two runs side by side."""
    names = sorted(set(run_a["segments"]) | set(run_b["segments"]))
    fig = go.Figure()
    for run, colour in ((run_a, "#9DB4E0"), (run_b, "#3D6FD1")):
        fig.add_bar(x=names, y=[100 * run["segments"].get(n, {}).get("score", 0) for n in names],
                    name=f"run {run['id']} ({run['model'] or 'default'})", marker_color=colour,
                    text=[f"{run['segments'][n]['passed']}/{run['segments'][n]['n']}" if n in run["segments"] else ""
                          for n in names], textposition="outside")
    fig.update_layout(title="Score by segment", barmode="group", **(_LAYOUT | {"hovermode": "closest"}))
    fig.update_yaxes(title_text="score (%)", range=[0, 115])
    return fig
