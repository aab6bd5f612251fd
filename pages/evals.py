"""Evals: the suites, their scores over time, any two runs side by side with their regressions, collected cases."""

import streamlit as st

from core.ops import describe_suites, list_runs
from ui import charts
from ui.evals import collected_cases, pick_runs, run_launcher, side_by_side, suite_table
from ui.session import require_principal

principal = require_principal("admin", "developer")
st.title("Evals")
st.caption("Offline eval suites run the same core calls the features make. A run fails when its score drops "
           "beyond the suite's tolerance against its baseline: `keel eval run SUITE` exits 1, and CI runs the "
           "fast suites.")

suites = describe_suites()
runs = list_runs(limit=300)
suite_table(suites, runs)
run_launcher(suites, principal.email or principal.sub)

if runs:
    st.plotly_chart(charts.eval_scores_over_time(runs))

st.subheader("Side by side")
picked = pick_runs(runs)
if picked:
    side_by_side(*picked)

st.subheader("Collected cases")
st.caption("Cases from the review queue and support escalations: they run in their own segments, labelled by "
           "source, and do not move the gated score.")
collected_cases()
