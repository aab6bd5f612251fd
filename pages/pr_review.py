"""PR review: submit a diff (sample, pasted, uploaded, or two git refs); see the agent's comments inline."""

import streamlit as st

from ui import review as r
from ui.session import require_principal

principal = require_principal("developer", "admin")
st.title("PR review")
st.caption("An agent runs ripgrep, ruff, bandit and AST checks in parallel on the changed code, then the model "
           "explains the findings. Comments land only on lines the PR adds; dismissed ones stay dismissed.")

with st.container(border=True):
    request = r.review_form()
    row = st.container(horizontal=True, wrap=True, vertical_alignment="center")  # full labels, wrapping when narrow
    use_llm = row.toggle("Model explains findings", value=True, key="prr_llm")
    fresh = row.toggle("Ignore the cache", value=False, key="prr_fresh")
    go = row.button("Review", type="primary", icon=":material/rate_review:", disabled=request is None)

if go and request is not None:
    # The tools answer in about a second: show their findings now, and let the model's explanations follow.
    result = r.run_review(request, use_llm=False, use_cache=not fresh, user=principal.sub)
    st.session_state.pop("prr_note", None)
    if result is not None:
        st.session_state["prr_result"] = result
        st.session_state["prr_request"] = request
        st.session_state["prr_model"] = (r.start_model_pass(request, use_cache=not fresh, user=principal.sub)
                                         if use_llm else None)

result = st.session_state.get("prr_result")
if result is None:
    st.info("Pick a sample PR and press **Review**, or paste a diff of your own.", icon=":material/arrow_upward:")
    st.stop()

r.header(result)
r.model_pass_status()
if st.session_state.get("prr_note"):
    st.caption(st.session_state["prr_note"])
rerun_col, export_col, _ = st.columns([1.4, 2, 1.6])
if rerun_col.button("Re-run review", icon=":material/refresh:", key="prr_rerun", width="stretch"):
    again = r.run_review(st.session_state["prr_request"], use_llm=False, use_cache=True, user=principal.sub,
                         cache_first=True)
    if again is not None:
        st.session_state["prr_result"] = again
        st.session_state["prr_model"] = (r.start_model_pass(st.session_state["prr_request"], use_cache=True,
                                                            user=principal.sub) if use_llm else None)
        st.rerun()
r.exports(result, export_col)

diff_tab, timeline_tab = st.tabs(["Diff and comments", "Tool timeline"])
with diff_tab:
    severities, categories = r.filters(result)
    r.diff_with_comments(result, severities, categories, principal.sub)
    r.dismissed_panel()
with timeline_tab:
    st.markdown(r.timeline_caption(result))
    st.plotly_chart(r.timeline_figure(result.timeline), width="stretch")
    s = result.stats
    st.caption(f"Triage: {'; '.join(result.triage.get('reasons', []))}. Post-processing: {s.get('raw', 0)} raw "
               f"findings → {s.get('collapsed', 0)} collapsed as duplicates, "
               f"{s.get('not_on_added_lines', 0)} off the changed lines, {s.get('vague_dropped', 0)} too vague, "
               f"{s.get('dismissed_suppressed', 0)} dismissed earlier → {len(result.comments)} shown. Model notes: {s.get('model_notes_added', 0)} attached, "
               f"{s.get('model_notes_rejected', 0)} rejected by validation.")
    st.dataframe(result.timeline, hide_index=True)
