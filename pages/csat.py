"""CSAT: satisfaction by intent × handled by × model (worst first), drill-down below 3, CSV export."""

import time

import pandas as pd
import streamlit as st

from core.support import (
    conversation_rows,
    filter_options,
    get_conversation,
    get_handoff,
    list_messages,
    overview,
    segments,
)
from ui import support as ui
from ui.demo import demo_cleared_notice, demo_data_panel, has_demo, label_demo
from ui.session import require_principal
from ui.text import plain

principal = require_principal("support_agent", "admin")
st.title("Customer satisfaction")
demo_cleared_notice()
demo_data_panel(principal)

WINDOWS = {"Last 7 days": 7, "Last 30 days": 30, "Last 90 days": 90, "All time": None}
options = filter_options()
f = st.columns([1, 2, 1, 2])
window = f[0].selectbox("Window", list(WINDOWS), index=1)
intents = f[1].multiselect("Intent", options["intents"], placeholder="all intents")
handled = f[2].multiselect("Handled by", options["handled_by"], placeholder="bot and human")
models = f[3].multiselect("Model", options["models"], placeholder="all models")
days = WINDOWS[window]
filters = ui.CsatFilters(since=time.time() - days * 86400 if days else None, intents=intents, handled_by=handled,
                         models=models)

total = overview(**filters)
m = st.columns(4)
m[0].metric("Average CSAT", "—" if total.avg_csat is None else f"{total.avg_csat:.2f} / 5")
m[1].metric("Rated conversations", total.rated)
m[2].metric("Conversations", total.conversations)
m[3].metric("Escalation rate", f"{total.escalation_rate:.0%}")

rows = segments(**filters)
if not rows:
    st.info("No conversations in this window.")
    st.stop()
st.plotly_chart(label_demo(ui.csat_figure(rows), has_demo("support_conversations")), width="stretch")
st.dataframe(pd.DataFrame([{"intent": s.intent, "handled by": s.handled_by, "model": s.model,
                            "avg CSAT": "not rated" if s.avg_csat is None else f"{s.avg_csat:.2f}", "rated": s.rated,
                            "conversations": s.conversations, "escalation rate": s.escalation_rate} for s in rows]),
             hide_index=True, width="stretch",
             column_config={"escalation rate": st.column_config.ProgressColumn(format="percent", min_value=0,
                                                                               max_value=1)})

everything = conversation_rows(**filters)
st.download_button("Export CSV (every conversation, with CSAT)", pd.DataFrame(everything).to_csv(index=False),
                   file_name="keel-support-csat.csv", mime="text/csv", icon=":material/download:")

st.subheader("Rated below 3")
low = conversation_rows(max_score=2, **filters)
if not low:
    st.success("No conversation in this window was rated below 3.")
    st.stop()
table = pd.DataFrame(low)[["conversation", "csat", "comment", "intent", "handled_by", "model", "agent",
                           "first_message"]]
picked = st.dataframe(table, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
                      key="low-csat")
chosen = picked.selection.rows[0] if picked.selection.rows else 0
conv_id = int(table.iloc[chosen]["conversation"])
conv = get_conversation(conv_id)
with st.container(border=True):
    st.markdown(f"**Conversation #{conv.id}** · {plain(conv.customer_sub)} · rated **{conv.csat}/5**"
                + (f" — “{ui.escape_markdown(conv.csat_comment)}”" if conv.csat_comment else ""))
    ui.eval_case_form(conv.id, principal, key="csat")
    handoff = get_handoff(conv.id)
    if handoff:
        with st.expander("Handoff package"):
            ui.package_panel(conv, handoff)
    ui.transcript(list_messages(conv.id, include_notes=True), agent_view=True)
