"""Plotly figures for the Dashboard, built from `core.ops.Dashboard` data and nothing else."""

from __future__ import annotations

from datetime import datetime, timezone

import plotly.graph_objects as go
from plotly.subplots import make_subplots

_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), height=320, legend=dict(orientation="h", y=-0.2),
               hovermode="x unified")


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
    fig.update_yaxes(title_text="USD", secondary_y=True, rangemode="tozero")
    fig.update_yaxes(rangemode="tozero", secondary_y=False)
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
    return fig
