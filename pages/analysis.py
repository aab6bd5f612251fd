"""Analysis: who the cost comes from, when things are slow or failing, and how model behaviour drifts."""

import streamlit as st

from core.observe import capability_drift, cost_concentration, time_of_day
from ui import charts
from ui.controls import window_picker
from ui.demo import demo_cleared_notice, demo_data_panel, has_demo, label_demo
from ui.session import require_principal

principal = require_principal("admin", "developer")
st.title("LLM analysis")
demo_cleared_notice()
demo_data_panel(principal)
demo = has_demo()

window = window_picker({"Last 7 days": 24 * 7, "Last 30 days": 24 * 30, "Last 90 days": 24 * 90}, default=1)

conc = cost_concentration(window)
if not conc.customers:
    st.info("No customer traffic in this window yet. Run `keel demo traffic --days 30` to generate sample traffic.")
    st.stop()

st.subheader("Cost concentration")
k = st.columns(4)
k[0].metric("Top 1% of customers", f"{100 * conc.top1_share:.0f}% of cost")
k[1].metric("Top 10% of customers", f"{100 * conc.top10_share:.0f}% of cost")
k[2].metric("Gini", f"{conc.gini:.2f}")
paid = [c for c in conc.customers if c["plan"] != "free"]  # a free plan pays $0: every free customer "costs more"
k[3].metric("Paid customers costing more than they pay",
            f"{sum(c['over_cost'] for c in paid)} of {len(paid)}" if paid else "no paid customers",
            help=f"{len(conc.customers) - len(paid)} free customers are not counted: they pay $0 by design.")
left, right = st.columns(2)
left.plotly_chart(label_demo(charts.lorenz(conc), demo))
right.plotly_chart(label_demo(charts.cost_vs_revenue(conc), demo))
st.caption(f"Plan revenue: free = $0, paid = ${conc.paid_plan_usd:g}/month (KEEL_PAID_PLAN_USD), pro-rated to "
           f"{conc.window_hours} hours. Customers without a workspace count as free.")
with st.expander("Customers by cost"):
    st.dataframe(conc.customers, width="stretch", hide_index=True)

st.subheader("Time of day (UTC)")
tod = time_of_day(window)
a, b = st.columns(2)
a.plotly_chart(label_demo(charts.weekday_heatmap(tod.latency_p95_ms, "Latency p95 (ms)"), demo))
b.plotly_chart(label_demo(charts.weekday_heatmap(tod.ttft_avg_ms, "Time to first token, avg (ms)"), demo))
a, b = st.columns(2)
a.plotly_chart(label_demo(charts.weekday_heatmap(tod.error_rate, "Error rate (%)", percent=True), demo))
b.plotly_chart(label_demo(charts.weekday_heatmap(tod.fallback_rate, "Fallback rate (%)", percent=True), demo))

st.subheader("Capability drift")
by = st.radio("Per", ["model", "prompt_version"], horizontal=True,
              format_func=lambda v: "model" if v == "model" else "prompt version")
drift = capability_drift(window, by=by)
a, b = st.columns(2)
a.plotly_chart(label_demo(charts.drift(drift, "refusal_rate"), demo))
b.plotly_chart(label_demo(charts.drift(drift, "json_valid_rate"), demo))
a, b = st.columns(2)
a.plotly_chart(label_demo(charts.drift(drift, "empty_rate"), demo))
b.plotly_chart(label_demo(charts.drift(drift, "tokens_out_avg"), demo))
st.caption(f"Read in {conc.elapsed_ms + tod.elapsed_ms + drift.elapsed_ms:.0f} ms from the hourly rollups.")
