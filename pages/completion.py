"""Code completion: the completion playground (Gradio, same origin) and this user's recent suggestions."""

import streamlit as st

from core.completion import recent_events
from ui.session import require_principal

principal = require_principal()
st.title("Code completion")
st.caption("Fill-in-the-middle suggestions while you type: cache first, adaptive debounce, stale requests "
           "cancelled, streaming, a speculative next suggestion after you accept. Editors can use the same "
           "engine through `POST /api/complete`.")
st.iframe("/playground/code/", height=760)

events = [e for e in recent_events(500, user=principal.sub) if not e["speculative"]]
with st.expander(f"Your last {len(events)} suggestion requests", expanded=False):
    if events:
        shown = [e for e in events if e["status"] == "shown"]
        latencies = sorted(e["perceived_ms"] for e in shown if e["perceived_ms"] is not None)
        cols = st.columns(4)
        cols[0].metric("Shown", len(shown))
        cols[1].metric("Perceived p50", f"{latencies[len(latencies) // 2]:.0f} ms" if latencies else "–")
        cols[2].metric("Cache hits", sum(1 for e in events if e["cache_hit"]))
        cols[3].metric("Accepted", sum(1 for e in events if e["accepted"]))
        st.dataframe([{k: e[k] for k in ("path", "status", "source", "perceived_ms", "model_ms", "tokens_out",
                                         "accepted")} for e in events[:50]], hide_index=True)
    else:
        st.caption("Nothing yet: type in the playground above.")
