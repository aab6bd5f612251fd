"""Review queue: a sampled share of answered calls; mark each good or bad, and turn a bad one into an eval case."""

import streamlit as st

from core.config import get_settings
from core.ops import load_suites, review_counts, review_queue
from ui.eval_health import investigate_panel
from ui.evals import review_card
from ui.session import require_principal

principal = require_principal("admin", "developer")
st.title("Review queue")
share = get_settings().review_sample_share
st.caption(f"{share:.0%} of answered calls are sampled for review (KEEL_REVIEW_SAMPLE_SHARE). "
           "A bad call becomes an eval case in one click; it then runs in its suite's review-queue segment.")

counts = review_counts()
k = st.columns(3)
k[0].metric("To review", counts["pending"])
k[1].metric("Good", counts["good"])
k[2].metric("Bad", counts["bad"])

left, right = st.columns([2, 3])
shown = {"To review": "pending", "Marked bad": "bad", "Marked good": "good", "All": "all"}
verdict = shown[left.radio("Show", list(shown), horizontal=True, key="review_show")]
features = right.multiselect("Features", ["workspace", "support", "search", "review", "completion", "playground"],
                             key="review_features")
items = review_queue(verdict=None if verdict == "all" else verdict, features=tuple(features), limit=20)
if not items:
    st.info("Nothing here. Calls are sampled as they are made; `keel demo traffic` adds sampled demo calls.")
suites = sorted(load_suites())
for item in items:
    review_card(item, suites, principal.email or principal.sub)
    investigate_panel(item["request_id"], principal.email or principal.sub)
