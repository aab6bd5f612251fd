"""Dashboard: cost, volume, latency and errors of every LLM call, from the request log's rollups."""

from datetime import datetime, timezone

import streamlit as st

from core.llm import STATUSES, list_budgets
from core.observe import DIMENSIONS, LogFilter, call_record, dashboard, model_worker, recent_calls, request_attempts
from ui import charts
from ui.controls import window_picker
from ui.demo import demo_cleared_notice, demo_data_panel, has_demo, label_demo
from ui.eval_health import investigate_panel, migrations_due_panel
from ui.session import require_principal

principal = require_principal("admin", "developer")
st.title("LLM dashboard")
demo_cleared_notice()
demo_data_panel(principal)

window = window_picker({"Last 24 hours": 24, "Last 7 days": 24 * 7, "Last 30 days": 24 * 30}, default=0)
for budget in list_budgets():
    if budget.over_hard:
        st.error(f"Hard budget reached: {budget.scope} **{budget.key}** spent ${budget.spent_usd:,.2f} of "
                 f"${budget.hard_usd:,.2f} in {budget.month}; its calls are being refused.", icon=":material/block:")
    elif budget.over_soft:
        st.warning(f"Soft budget passed: {budget.scope} **{budget.key}** spent ${budget.spent_usd:,.2f} "
                   f"(soft limit ${budget.soft_usd:,.2f}) in {budget.month}.", icon=":material/warning:")
migrations_due_panel()  # deprecations within 90 days, with each feature's readiness
data = dashboard(window)
demo = has_demo()
t = data.totals

if not t["requests"]:
    st.info("No LLM calls in this window yet. Ask something on the Home page or the playground, "
            "or run `keel demo traffic` to generate sample traffic.")
    st.stop()



def _ms(value) -> str:
    if value is None:
        return "–"
    return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:.0f} ms"


def _count(value: int) -> str:
    for size, suffix, digits in ((1e9, "B", 1), (1e6, "M", 1), (1e3, "k", 0)):
        if value >= size:
            return f"{value / size:.{digits}f}{suffix}"
    return str(value)


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 1 else f"${value:.6f}"


kpis = st.columns(4)
kpis[0].metric("Requests", f"{t['requests']:,}")
kpis[1].metric("Cost", _usd(t["cost_usd"]))
kpis[2].metric("Tokens in / out", f"{_count(t['tokens_in'])} / {_count(t['tokens_out'])}")
kpis[3].metric("Errors / fallbacks", f"{100 * t['error_rate']:.1f}% / {100 * t['fallback_rate']:.1f}%")
kpis = st.columns(4)
kpis[0].metric("Latency p50", _ms(t["latency_p50_ms"]))
kpis[1].metric("Latency p95", _ms(t["latency_p95_ms"]))
kpis[2].metric("Latency p99", _ms(t["latency_p99_ms"]))
kpis[3].metric("Time to first token (avg)", _ms(t["ttft_avg_ms"]))

row1 = st.columns(2)
row1[0].plotly_chart(label_demo(charts.volume_and_cost(data.series), demo), key="volume")
row1[1].plotly_chart(label_demo(charts.latency(data.series), demo), key="latency")
row2 = st.columns(2)
row2[0].plotly_chart(label_demo(charts.tokens(data.series), demo), key="tokens")
row2[1].plotly_chart(label_demo(charts.error_rates(data.series), demo), key="errors")

BREAKDOWN_COLUMNS = {
    "cost_usd": st.column_config.NumberColumn("cost", format="$%.6f"),
    "error_rate": st.column_config.NumberColumn("errors", format="percent"),
    "fallback_rate": st.column_config.NumberColumn("fallbacks", format="percent"),
    "latency_avg_ms": st.column_config.NumberColumn("latency avg (ms)", format="%.0f"),
    "ttft_avg_ms": st.column_config.NumberColumn("TTFT avg (ms)", format="%.0f"),
}
st.subheader("Breakdowns")
for tab, dim in zip(st.tabs([d.replace("_", " ").title() for d in DIMENSIONS]), DIMENSIONS):
    with tab:
        rows = data.breakdowns[dim]
        st.plotly_chart(label_demo(charts.breakdown(rows, dim), demo), key=f"breakdown-{dim}")
        st.dataframe(rows, hide_index=True, width="stretch", column_config=BREAKDOWN_COLUMNS)

st.subheader("Embedded model worker")
worker = model_worker(window)
for name, state in worker["workers"].items():
    cols = st.columns(4)
    cols[0].metric("Worker state", state["state"].replace("_", " "))
    cols[1].metric("Process id", state["pid"] or "–")
    cols[2].metric("Restarts", state["restarts"])
    cols[3].metric("Attempts failed by crashes", worker["failed_attempts"], help="in this window, from the request log")
    if state["problem"]:
        st.error(state["problem"], icon=":material/error:")
    elif state["last_crash"]:
        st.warning(f"Last crash: {state['last_crash']['reason']} (pid {state['last_crash']['pid']}, "
                   f"{datetime.fromtimestamp(state['last_crash']['at'], tz=timezone.utc):%Y-%m-%d %H:%M:%S} UTC)",
                   icon=":material/restart_alt:")
if worker["recent"]:
    for row in worker["recent"]:
        row["time"] = datetime.fromtimestamp(row.pop("created_at"), tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    st.dataframe(worker["recent"], hide_index=True, width="stretch",
                 column_order=["time", "feature", "task", "model", "error", "request_id"])

st.subheader("Recent calls")
filter_cols = st.columns(3)
status = filter_cols[0].multiselect("Status", [str(s) for s in STATUSES])
feature = filter_cols[1].multiselect("Feature", sorted(r["feature"] for r in data.breakdowns["feature"]))
recent = recent_calls(LogFilter(since=window.since, until=window.until, statuses=tuple(status),
                                features=tuple(feature)), limit=100)
for row in recent:
    row["time"] = datetime.fromtimestamp(row.pop("created_at"), tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
picked = st.dataframe(recent, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
                      key="recent", column_order=["time", "status", "feature", "task", "tier", "provider", "model",
                                                  "customer", "user", "tokens_in", "tokens_out", "ttft_ms",
                                                  "latency_ms", "cost_usd", "error", "id"])
if picked.selection.rows:
    record = call_record(recent[picked.selection.rows[0]]["id"])
    if record is None:  # the row left the log (retention, a demo data reset) after the table was read
        st.info("That call is no longer in the request log.")
    else:
        with st.container(border=True):
            st.markdown(f"##### Call {record['id']} · request `{record['request_id']}` · attempt {record['attempt']}")
            attempts = request_attempts(record["request_id"])
            if len(attempts) > 1:  # a fallback or retry: show the whole chain of attempts of this request
                st.dataframe([{k: a[k] for k in ("attempt", "status", "provider", "model", "latency_ms", "error")}
                              for a in attempts], hide_index=True, width="stretch")
            st.json(record, expanded=True)
            investigate_panel(record["request_id"], principal.email or principal.sub)
st.caption(f"Dashboard queries took {data.elapsed_ms:.0f} ms.")
