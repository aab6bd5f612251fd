"""Evals: the suites, their scores over time, any two runs side by side with their regressions, collected cases."""

import streamlit as st

from core.evals import describe_suites, list_runs
from ui import charts
from ui.eval_health import annotation_section, coverage_section, decay_section, migrations_section
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

st.subheader("Agent branch coverage")
st.caption("The support router's and the PR-review agent's decision branches (from their code), the eval cases that "
           "take each, and its share of production. `keel eval coverage` fails CI on an uncovered production branch.")
coverage_section()

st.subheader("Snapshot eval decay")
st.caption("How much of each feature's recent production no eval input resembles (nearest-neighbour cosine distance "
           "of all-MiniLM-L6-v2 embeddings), what the uncovered inputs are about, and whether each suite still scores "
           "two models apart. Send a sample of a cluster to the review queue to turn it into eval cases.")
decay_section(principal.email or principal.sub)

st.subheader("Model migrations")
st.caption("Deprecation dates and owners of priced models; `keel eval compare --model A --model B` reports are stored "
           "here with quality, cost and latency per suite and segment.")
migrations_section(principal.email or principal.sub)

st.subheader("Annotation drift")
st.caption("Each case's rubric version and labeller; a re-label audit hides the old label and reports Cohen's kappa.")
annotation_section(principal.email or principal.sub)
