"""Widgets for eval health: branch coverage, snapshot eval decay, model migrations, annotation drift (re-label audits) and the
Investigate panel shared by the Dashboard call detail and the Review queue. Background work is read back from SQL,
so progress survives a reload and shows in every server process."""

from __future__ import annotations

import datetime as dt

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from core.observe import (
    DECAY_DEFAULT_DAYS, DECAY_DEFAULT_DISTANCE, DECAY_PRODUCTION_CAP, DecayError, decay_features, decay_reports,
    latest_decay_reports, send_cluster_to_review,
)
from core.evals import (
    RelabelError, annotation_summary, audit_items, audit_report, branch_coverage, list_audits, load_suites,
    record_label, start_audit, suite_labels,
)
from core.observe import (
    INVESTIGATION_MAX_N, Factor, InvestigationError, MigrationError, feature_readiness, investigation_to_eval_case,
    list_investigations, list_lifecycle, list_migration_reports, migrations_due, plan_investigation, report_rows,
    set_lifecycle, start_investigation, start_migration_report,
)
from core.llm import list_prices
from ui.evals import pct, when

_RUNNING = ("queued", "running")


# -- branch coverage -------------------------------------------------------------------------------------------------


def coverage_section() -> None:
    days = st.select_slider("Production window", [1, 7, 30, 90], value=30, key="coverage_days",
                            format_func=lambda d: f"last {d} days")
    report = branch_coverage(days=days)
    if report.uncovered:
        st.error("Production takes branches no eval case covers: "
                 + ", ".join(f"`{r.agent}:{r.branch}`" for r in report.uncovered)
                 + ". `keel eval coverage` exits 1 until an eval case takes them.")
    else:
        st.success("Every branch production takes has at least one eval case.")
    fig = go.Figure()
    labels = [f"{r.agent}: {r.branch}" for r in report.rows]
    fig.add_bar(y=labels, x=[100 * r.share for r in report.rows], orientation="h", name="% of production",
                marker_color=["#d62728" if r.uncovered else "#1f77b4" for r in report.rows])
    fig.add_bar(y=labels, x=[r.eval_cases for r in report.rows], orientation="h", name="eval cases",
                marker_color="#2ca02c", xaxis="x2")
    fig.update_layout(barmode="group", height=40 + 26 * len(labels), margin=dict(l=10, r=10, t=30, b=10),
                      xaxis=dict(title="% of the agent's production decisions"),
                      xaxis2=dict(title="eval cases", overlaying="x", side="top"),
                      yaxis=dict(autorange="reversed"), legend=dict(orientation="h"))
    st.plotly_chart(fig)
    st.dataframe([{"agent": r.agent, "branch": r.branch, "eval cases": r.eval_cases, "suites": ", ".join(r.suites),
                   "production": r.production, "share": pct(r.share),
                   "last failure": r.last_failure and f"{r.last_failure['suite']}:{r.last_failure['case_id']} "
                                                      f"({when(r.last_failure['at'])})",
                   "status": "UNCOVERED" if r.uncovered else ("not in code" if not r.in_code else "ok")}
                  for r in report.rows], hide_index=True, width="stretch")


# -- snapshot eval decay ---------------------------------------------------------------------------------------------


def decay_figure(reports: list[dict], shown: dict | None) -> go.Figure:
    """Left: the share of each feature's production inputs no eval input covers; right: the shown report's clusters."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.45, 0.55], subplot_titles=(
        "uncovered production inputs per feature",
        f"uncovered clusters: {shown['feature']}" if shown else "uncovered clusters"))
    fig.add_bar(x=[r["feature"] for r in reports], y=[100 * (r["uncovered_share"] or 0) for r in reports],
                text=[f"{100 * r['uncovered_share']:.0f}%" if r["uncovered_share"] is not None else "no traffic"
                      for r in reports], marker_color="#d62728", name="% uncovered", row=1, col=1)
    clusters = (shown or {}).get("clusters", [])
    fig.add_bar(x=[f"#{c['cluster']}: {c['examples'][0][:24]}" for c in clusters], y=[c["size"] for c in clusters],
                marker_color="#ff7f0e", name="inputs", row=1, col=2)
    fig.update_yaxes(title_text="% of sampled inputs", range=[0, 100], row=1, col=1)
    fig.update_yaxes(title_text="production inputs", row=1, col=2)
    fig.update_layout(height=340, showlegend=False, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def decay_section(user: str) -> None:
    features = sorted(decay_features())
    with st.form("decay"):
        c = st.columns([2, 1, 1, 1])
        feature = c[0].selectbox("Feature", ["every feature", *features])
        days = c[1].number_input("Production window (days)", min_value=0.1, max_value=3650.0,
                                 value=float(DECAY_DEFAULT_DAYS))
        distance = c[2].number_input("Covered within (cosine distance)", min_value=0.0, max_value=2.0,
                                     value=float(DECAY_DEFAULT_DISTANCE), step=0.05)
        c[3].write("")
        if c[3].form_submit_button("Compute decay", type="primary"):
            try:
                with st.spinner("Embedding production and eval inputs…"):
                    decay_reports(None if feature == "every feature" else feature, float(days), float(distance))
            except (DecayError, ValueError) as exc:
                st.error(str(exc))
    reports = latest_decay_reports()
    if not reports:
        st.info("No decay report yet: compute one above, or run `keel eval decay`.")
        return
    with_clusters = [r for r in reports if r["clusters"]]
    pick = st.selectbox("Clusters of", [r["feature"] for r in with_clusters] or ["–"], key="decay_feature")
    shown = next((r for r in with_clusters if r["feature"] == pick), None)
    st.plotly_chart(decay_figure(reports, shown))
    st.dataframe([{"feature": r["feature"], "uncovered": pct(r["uncovered_share"]),
                   "production sampled": f"{r['production']['sampled']} of {r['production']['in_window']}",
                   "eval inputs": r["eval_inputs"], "within": r["distance"], "days": r["days"],
                   "suites still separating two models": "; ".join(
                       f"{d['suite']}: {d['verdict']}" + ("" if d["spread"] is None else f" ({pct(d['spread'])})")
                       for d in r["discrimination"]),
                   "report": f"#{r['id']} · {when(r['created_at'])}"} for r in reports],
                 hide_index=True, width="stretch")
    if any(r["production"]["capped"] for r in reports):
        st.caption(f"Each report embeds the newest {DECAY_PRODUCTION_CAP:,} answered calls of its window.")
    if shown is None:
        return
    for c in shown.get("clusters", []):
        left = c["size"] - len(c["sent"])
        with st.expander(f"Cluster #{c['cluster']}: {c['size']} inputs ({pct(c['share'])}), "
                         f"{len(c['sent'])} sent to review"):
            for example in c["examples"]:
                st.code(example, language=None, wrap_lines=True)
            n = min(5, left)
            if st.button(f"Send {n} to the review queue" if n else "All sent", key=f"decay_send_{shown['id']}_"
                         f"{c['cluster']}", disabled=not n):
                try:
                    added = send_cluster_to_review(shown["id"], c["cluster"], n)
                    st.toast(f"{len(added)} call(s) added to the review queue")
                    st.rerun()
                except DecayError as exc:
                    st.error(str(exc))


# -- model migrations --------------------------------------------------------------------------------------------------


def migrations_due_panel() -> None:
    """For the Dashboard: migrations due within 90 days, with each feature's readiness."""
    due = migrations_due()
    if not due:
        return
    st.subheader("Model migrations due")
    for m in due:
        left = "overdue" if m["days_left"] < 0 else f"in {m['days_left']} days"
        st.warning(f"**{m['model']}** is deprecated on {m['deprecation_date']} ({left}); owner {m['owner']}"
                   + (f", moving to **{m['replacement']}**" if m["replacement"] else ", no replacement chosen"))
        if m["features"]:
            st.dataframe([{"feature": f["feature"], "calls (30 d)": f["calls"], "readiness": f["readiness"],
                           "report": f["report_id"]} for f in m["features"]], hide_index=True, width="stretch")


def migrations_section(user: str) -> None:
    models = [p["model"] for p in list_prices()]
    with st.form("lifecycle"):
        c = st.columns(4)
        model = c[0].selectbox("Model (price table)", models)
        date = c[1].date_input("Deprecation date", value=dt.date.today() + dt.timedelta(days=60))
        owner = c[2].text_input("Owner", value=user, max_chars=255)
        replacement = c[3].text_input("Replacement", max_chars=128, placeholder="e.g. gpt-4.1-mini")
        if st.form_submit_button("Save deprecation"):
            try:
                set_lifecycle(model, date.isoformat(), owner, replacement)
                st.toast(f"{model}: deprecated on {date}")
            except MigrationError as exc:
                st.error(str(exc))
    lifecycle = list_lifecycle()
    if lifecycle:
        st.dataframe(lifecycle, hide_index=True, width="stretch",
                     column_order=["model", "deprecation_date", "days_left", "owner", "replacement"])
    readiness = feature_readiness()
    if readiness:
        st.caption("Migration readiness per feature (from the newest report between the model and its replacement)")
        st.dataframe(readiness, hide_index=True, width="stretch",
                     column_order=["model", "feature", "calls", "replacement", "readiness", "suites", "report_id"])
    with st.form("migration_report"):
        cols = st.columns([2, 2, 3, 1])
        a = cols[0].text_input("From model (tier or provider/model)", key="mig_from")
        b = cols[1].text_input("To model", key="mig_to")
        suites = cols[2].multiselect("Suites (default: fast suites that call a model)",
                                  [s.name for s in load_suites().values() if s.uses_model])
        limit = cols[3].number_input("Cases per suite", min_value=1, max_value=5000, value=20)
        if st.form_submit_button("Run migration report"):
            try:
                start_migration_report(a.strip(), b.strip(), suites or None, limit=int(limit), created_by=user,
                                       background=True)
            except (MigrationError, ValueError) as exc:
                st.error(str(exc))
    reports = list_migration_reports(limit=20)
    if any(r["status"] == "running" for r in reports):
        st.fragment(_report_progress, run_every=1.0)()
    for r in reports[:5]:
        with st.expander(f"#{r['id']} {r['model_from']} → {r['model_to']} · {r['status']} · {when(r['created_at'])}"):
            if r["error"]:
                st.error(r["error"])
            st.write(r["report"].get("verdict", {}))
            rows = report_rows(r)
            if rows:
                st.dataframe(rows, hide_index=True, width="stretch")


def _report_progress() -> None:
    running = [r for r in list_migration_reports(limit=20) if r["status"] == "running"]
    if not running:
        st.rerun(scope="app")
    for r in running:
        st.progress(r["done"] / max(1, r["total"]), text=f"report #{r['id']}: {r['done']}/{r['total']} suite runs")


# -- annotation drift ---------------------------------------------------------------------------------------------------


def annotation_section(user: str) -> None:
    summary = annotation_summary()
    st.dataframe([{"suite": s["suite"], "cases": s.get("cases"), "labelled under an older rubric": s.get("outdated"),
                   "current rubric": s.get("current_rubric"), "labellers": s.get("labellers"),
                   "kappa (last audit)": s.get("kappa"), "note": s.get("error", "")} for s in summary],
                 hide_index=True, width="stretch")
    auditable = [s["suite"] for s in summary if s.get("auditable")]
    with st.form("start_audit"):
        c = st.columns([3, 1])
        suite = c[0].selectbox("Suite to audit", auditable)
        k = c[1].number_input("k cases", min_value=1, max_value=200, value=10)
        if st.form_submit_button("Start re-label audit") and suite:
            try:
                start_audit(suite, int(k), created_by=user)
            except (RelabelError, ValueError) as exc:
                st.error(str(exc))
    for audit in list_audits()[:5]:
        with st.expander(f"Audit #{audit['id']} · {audit['suite']} · k={audit['k']} · {audit['status']}",
                         expanded=audit["status"] == "open"):
            if audit["status"] == "open":
                _label_next(audit, user)
            report = audit_report(audit["id"])
            st.metric("Cohen's kappa", "–" if report["kappa"] is None else f"{report['kappa']:.2f}",
                      help=f"{report['labelled']} of {audit['k']} labelled; raw agreement {pct(report['agreement'])}")
            if audit["status"] == "done" and report["disagreements"]:
                st.dataframe(report["disagreements"], hide_index=True, width="stretch")


def _label_next(audit: dict, user: str) -> None:
    """One case at a time, the old label hidden: the labeller sees only the text and the rubric."""
    items = [i for i in audit_items(audit["id"]) if i["new_label"] is None]
    if not items:
        return
    item = items[0]
    st.progress(1 - len(items) / audit["k"], text=f"{audit['k'] - len(items)}/{audit['k']} labelled")
    st.code(item["input_text"][:3000], language=None, wrap_lines=True)
    labels = suite_labels(audit["suite"])
    c = st.columns([3, 1])
    label = c[0].radio("Your label", labels, horizontal=True, index=None, key=f"relabel_{audit['id']}_{item['case_id']}")
    # the button is disabled until a label is picked; `label is not None` says so to the type checker too
    if c[1].button("Save label", key=f"relabel_save_{audit['id']}_{item['case_id']}", disabled=label is None) \
            and label is not None:
        try:
            record_label(audit["id"], item["case_id"], label, labelled_by=user)
            st.rerun()
        except RelabelError as exc:
            st.error(str(exc))


# -- investigate ------------------------------------------------------------------------------------------------------


def investigate_panel(request_id: str, user: str) -> None:
    """Hypothesis, factor, values and N; the cost bound is shown before anything runs; the result can become an eval
    case. Investigations of this call are read back from SQL."""
    key = f"inv_{request_id}"
    with st.expander("Investigate: rerun this call with one factor varied"):
        hypothesis = st.text_area("Hypothesis", key=f"{key}_h", max_chars=2000,
                                  placeholder="e.g. the answer is wrong because temperature makes the model wander")
        c = st.columns([1, 2, 1])
        factors: list[Factor] = list(Factor)  # typed first: inline, mypy matches selectbox's empty-options overload
        factor = c[0].selectbox("Factor", factors, key=f"{key}_f")
        hint = {"model": "good/m1, fast", "temperature": "0, 0.7, 1.2", "prompt_version": "a version hash or file",
                "context": "logged, none, text:…"}[factor]
        values = c[1].text_input("Values (comma separated)", key=f"{key}_v", placeholder=hint)
        n = c[2].number_input(f"N per value (≤ {INVESTIGATION_MAX_N})", min_value=1, max_value=100, value=5,
                              key=f"{key}_n")
        plan = None
        try:
            if hypothesis or values:
                plan = plan_investigation(request_id, hypothesis, factor, [v for v in values.split(",")], int(n))
        except InvestigationError as exc:
            st.info(str(exc))
        if plan is not None:
            st.caption(f"{plan.total} rerun(s) through the gateway as feature `eval`: at most "
                       f"**${plan.estimate_usd:.6f}** (" + ", ".join(f"{v}: ${c:.6f}" for v, c in
                                                                   plan.per_variant_usd.items()) + ")")
            if st.button("Run investigation", key=f"{key}_run", type="primary"):
                start_investigation(plan, created_by=user, background=True)
        past = list_investigations(request_id)
        if any(i["status"] in _RUNNING for i in past):
            st.fragment(_investigation_progress, run_every=1.0)(request_id)
        for inv in past[:3]:
            _investigation_result(inv, user)


def _investigation_progress(request_id: str) -> None:
    running = [i for i in list_investigations(request_id) if i["status"] in _RUNNING]
    if not running:
        st.rerun(scope="app")
    for i in running:
        st.progress(i["done"] / max(1, i["total"]), text=f"investigation #{i['id']}: {i['done']}/{i['total']} reruns")


def _investigation_result(inv: dict, user: str) -> None:
    st.markdown(f"**#{inv['id']}** · {inv['status']} · varied {inv['factor']} · {inv['hypothesis']}")
    if inv["error"]:
        st.error(inv["error"])
    if inv["outcomes"]:
        fig = go.Figure()
        for value, o in inv["outcomes"].items():
            fig.add_bar(name=value, x=[t["text"][:40] for t in o["top"]], y=[t["count"] for t in o["top"]])
        fig.update_layout(height=260, margin=dict(l=10, r=10, t=10, b=10), yaxis_title="reruns")
        st.plotly_chart(fig, key=f"inv_chart_{inv['id']}")
        st.dataframe([{"value": v, "answered": f"{o['ok']}/{o['runs']}", "distinct answers": o["distinct"],
                       "tokens in/out": f"{o['tokens_in']}/{o['tokens_out']}", "cost $": o["cost_usd"],
                       "p50 ms": o["latency_p50_ms"]} for v, o in inv["outcomes"].items()],
                     hide_index=True, width="stretch")
    st.caption(f"cost ${inv['cost_usd']:.6f} of at most ${inv['estimate_usd']:.6f}")
    if inv["status"] == "done" and not inv["eval_case_id"]:
        c = st.columns([2, 3, 1])
        suite = c[0].selectbox("Suite", sorted(load_suites()), key=f"inv_suite_{inv['id']}")
        text = c[1].text_input("Expected: the answer must contain", key=f"inv_exp_{inv['id']}")
        if c[2].button("Make eval case", key=f"inv_case_{inv['id']}", disabled=not text.strip()):
            try:
                investigation_to_eval_case(inv["id"], suite, {"contains": [text.strip()]}, created_by=user)
                st.rerun()
            except (InvestigationError, ValueError) as exc:
                st.error(str(exc))
    elif inv["eval_case_id"]:
        st.caption(f"became eval case {inv['eval_case_id']}")
