"""Review queue: a sampled share of answered calls; mark each good or bad, and turn a bad one into an eval case."""

import streamlit as st

from core.config import get_settings
from core.annotation import review_counts, review_queue, review_total
from core.evals import load_suites
from ui.eval_health import investigate_panel
from ui.demo import demo_cleared_notice, demo_data_panel
from ui.evals import QueueFilters, review_card
from ui.session import require_principal

principal = require_principal("admin", "developer")
st.title("Review queue")
share = get_settings().annotation_sample_share
st.caption(f"{share:.0%} of answered calls are sampled for review (KEEL_ANNOTATION_SAMPLE_SHARE). "
           "A bad call becomes an eval case in one click; it then runs in its suite's review-queue segment.")

counts = review_counts()
k = st.columns(3)
k[0].metric("To review", counts["pending"])
k[1].metric("Good", counts["good"])
k[2].metric("Bad", counts["bad"])

demo_cleared_notice()
demo_data_panel(principal)
PAGE = 20
left, mid, right = st.columns([2, 1, 2])
shown = {"To review": "pending", "Marked bad": "bad", "Marked good": "good", "All": "all"}
verdict = shown[left.radio("Status", list(shown), horizontal=True, key="review_show")]
sources = {"All": None, "Real calls": "live", "Demo": "demo"}
source = sources[mid.selectbox("Source", list(sources), key="review_source")]
features = right.multiselect("Features", ["workspace", "support", "search", "review", "completion", "playground"],
                             key="review_features")
filters = QueueFilters(verdict=None if verdict == "all" else verdict, features=tuple(features), source=source)
total = review_total(**filters)
pages = max(1, -(-total // PAGE))
if st.session_state.get("review_filters") != filters:  # new filters start at the first page
    st.session_state["review_filters"], st.session_state["review_page"] = filters, 1
page = min(st.session_state.get("review_page", 1), pages)
items = review_queue(**filters, limit=PAGE, offset=(page - 1) * PAGE)


def pager(where: str) -> None:
    """Previous / page n of m / Next; the buttons move through the filtered queue PAGE items at a time."""
    prev, label, nxt = st.columns([1, 3, 1], vertical_alignment="center")
    if prev.button("Previous", key=f"review_prev_{where}", disabled=page <= 1, icon=":material/chevron_left:",
                   width="stretch"):
        st.session_state["review_page"] = page - 1
        st.rerun()
    first = (page - 1) * PAGE + 1 if total else 0
    label.markdown(f"<div style='text-align:center'>Page {page} of {pages} · items {first}–"
                   f"{min(page * PAGE, total)} of {total:,}</div>", unsafe_allow_html=True)
    if nxt.button("Next", key=f"review_next_{where}", disabled=page >= pages, icon=":material/chevron_right:",
                  width="stretch"):
        st.session_state["review_page"] = page + 1
        st.rerun()


if not items:
    st.info("Nothing here. Calls are sampled as they are made; `keel demo traffic` adds sampled demo calls.")
else:
    pager("top")
suites = sorted(load_suites())
for item in items:
    review_card(item, suites, principal.email or principal.sub)
    investigate_panel(item["request_id"], principal.email or principal.sub)
if len(items) > 3:
    pager("bottom")
