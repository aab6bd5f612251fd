"""Widgets for the Evals and Review queue pages: run launcher with progress, side-by-side runs, review cards."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TypedDict

import streamlit as st

from core.annotation import AnnotationError, mark_review, review_to_eval_case
from core.evals import (
    EvalError, background_status, compare_runs, delete_eval_case, get_run, list_eval_cases, list_runs,
    start_background_run,
)
from ui import charts

_CHANGE_ICONS = {"regressed": "🔴 regressed", "improved": "🟢 improved", "same": "same", "only in A": "only in A",
                 "only in B": "only in B"}


class QueueFilters(TypedDict):
    """The Review queue page's filters, passed as keywords to core.annotation's review_total and review_queue."""

    verdict: str | None
    features: tuple[str, ...]
    source: str | None


def when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if ts else ""


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def run_label(run: dict) -> str:
    return f"#{run['id']} {run['suite']} · {run['model'] or 'default'} · {pct(run['score'])} · {when(run['started_at'])}"


def suite_table(suites: list[dict], runs: list[dict]) -> None:
    latest: dict[str, dict] = {}
    for run in runs:  # newest first
        latest.setdefault(run["suite"], run)
    rows = []
    for s in suites:
        last = latest.get(s["suite"])
        rows.append({"suite": s["suite"], "feature": s["feature"], "cases": s["cases"],
                     "CI (fast)": s["fast"], "calls a model": s["uses_model"],
                     "last score": pct(last["score"] if last else None), "last verdict": last["status"] if last else "never run",
                     "tolerance": pct(s["tolerance"]), "floor": pct(s["min_score"]), "scorers": s["scorers"],
                     "what it checks": s["description"]})
    st.dataframe(rows, hide_index=True, width="stretch")


def run_launcher(suites: list[dict], user: str) -> None:
    """Start a suite on the server and watch its progress; only the progress panel polls, and only while running."""
    runnable = [s["suite"] for s in suites if isinstance(s["cases"], int)]
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    name = left.selectbox("Suite to run", runnable, key="eval_suite_to_run")
    if right.button("Run suite", icon=":material/play_arrow:", type="primary", width="stretch"):
        try:
            if not start_background_run(name, started_by=user):
                st.toast(f"{name} is already running")
        except EvalError as exc:
            st.error(str(exc))
    status = background_status()
    if any(info["running"] for info in status.values()):
        st.fragment(_progress, run_every=1.0)()
    for suite, info in status.items():
        if not info["running"] and info["error"]:
            st.error(f"{suite} stopped: {info['error']}")


def _progress() -> None:
    status = background_status()
    if not any(info["running"] for info in status.values()):
        st.rerun(scope="app")  # finished: redraw the tables and charts once, and stop polling
    for suite, info in status.items():
        if not info["running"]:
            continue
        running = [r for r in list_runs(suite, limit=1) if r["status"] == "running"]
        if running:
            r = running[0]
            st.progress(r["done"] / max(1, r["cases"]), text=f"{suite}: {r['done']}/{r['cases']} cases")
        else:
            st.progress(0.0, text=f"{suite}: starting…")


def pick_runs(runs: list[dict]) -> tuple[dict, dict] | None:
    """Two finished runs of one suite: B defaults to the newest, A to its baseline (or the run before)."""
    finished = [r for r in runs if r["status"] != "running"]
    if not finished:
        st.info("No finished runs yet. Start one above, or run `keel eval run --fast`.")
        return None
    suites = sorted({r["suite"] for r in finished})
    suite = st.selectbox("Suite", suites, key="eval_compare_suite")
    of_suite = [r for r in finished if r["suite"] == suite]
    if len(of_suite) < 2:
        st.info(f"{suite} has one run so far; run it again (or with another --model) to compare.")
        return None
    labels: dict[int, str] = {r["id"]: run_label(r) for r in of_suite}
    ids = list(labels)
    b_id = ids[0]
    a_default = of_suite[0]["baseline_run_id"] if of_suite[0]["baseline_run_id"] in labels else ids[1]
    left, right = st.columns(2)
    a_id = left.selectbox("Run A (before)", ids, index=ids.index(a_default), format_func=labels.__getitem__,
                          key=f"eval_a_{suite}")
    b_id = right.selectbox("Run B (after)", ids, index=ids.index(b_id), format_func=labels.__getitem__,
                           key=f"eval_b_{suite}")
    a, b = get_run(a_id), get_run(b_id)
    if a is None or b is None:  # get_run finds no run under that id
        st.info("One of those runs is no longer stored; pick another.")
        return None
    return a, b


def side_by_side(a: dict, b: dict) -> None:
    cols = st.columns(5)
    cols[0].metric("Score", pct(b["score"]), _delta(a["score"], b["score"]))
    cols[1].metric("Cases", b["cases"])
    cost_delta = b["cost_usd"] - a["cost_usd"]
    cols[2].metric("Cost (USD)", f"{b['cost_usd']:.6f}", f"{cost_delta:+.6f}" if abs(cost_delta) >= 5e-7 else None,
                   delta_color="inverse")
    cols[3].metric("Latency p50", f"{b['latency_p50_ms'] or 0:.0f} ms",
                   f"{(b['latency_p50_ms'] or 0) - (a['latency_p50_ms'] or 0):+.0f} ms", delta_color="inverse")
    cols[4].metric("Latency p95", f"{b['latency_p95_ms'] or 0:.0f} ms",
                   f"{(b['latency_p95_ms'] or 0) - (a['latency_p95_ms'] or 0):+.0f} ms", delta_color="inverse")
    verdict = st.error if b["status"] == "failed" else st.success
    verdict(f"Run {b['id']}: {b['message']}")
    st.plotly_chart(charts.eval_segments(a, b))
    rows = compare_runs(a["id"], b["id"])
    regressed = sum(r["change"] == "regressed" for r in rows)
    improved = sum(r["change"] == "improved" for r in rows)
    st.markdown(f"**{regressed} regressed · {improved} improved · {len(rows) - regressed - improved} unchanged**")
    only_changes = st.toggle("Only changed cases", value=bool(regressed or improved), key="eval_only_changes")
    shown = [r for r in rows if r["change"] != "same"] if only_changes else rows
    st.dataframe(
        [{"change": _CHANGE_ICONS[r["change"]], "case": r["case_id"], "segment": r["segment"], "source": r["source"],
          "input": r["input"], "expected": r["expected"], f"A #{a['id']}": _short(r["a_output"]),
          f"B #{b['id']}": _short(r["b_output"])} for r in shown],
        hide_index=True, width="stretch",
    )


def _delta(before: float | None, after: float | None) -> str | None:
    if before is None or after is None:
        return None
    return f"{100 * (after - before):+.1f} pts"


def _short(output: str | None) -> str:
    if output is None:
        return ""
    try:
        value = json.loads(output)
    except (TypeError, json.JSONDecodeError):
        return output[:200]
    if isinstance(value, dict):
        for key in ("label", "route", "text"):
            if key in value:
                return str(value[key])[:200]
        if "items" in value:
            return "; ".join(i.get("task", "") for i in value["items"])[:200]
    return output[:200]


def collected_cases() -> None:
    cases = list_eval_cases()
    if not cases:
        st.caption("No collected cases yet: mark a call bad in the Review queue, or add an escalated support "
                   "conversation, and it shows up here.")
        return
    for source in sorted({c["source"] for c in cases}):
        of_source = [c for c in cases if c["source"] == source]
        st.markdown(f"**From {source.replace('_', ' ')}** ({len(of_source)})")
        for case in of_source:
            with st.container(border=True):
                top, button = st.columns([6, 1], vertical_alignment="center")
                top.markdown(f"`{case['suite']}` · case {case['id']} · {when(case['created_at'])} · "
                             f"by {case['created_by'] or 'unknown'}")
                top.text(case["input_text"][:400])
                top.caption(f"expected {json.dumps(case['expected'])}" + (f" · {case['notes']}" if case["notes"] else ""))
                if button.button("Delete", key=f"del_case_{case['id']}", icon=":material/delete:"):
                    delete_eval_case(case["id"])
                    st.rerun()


# --- Review queue -------------------------------------------------------------------------------------------------

_SUITE_FOR_FEATURE = {"support": "support-routes", "workspace": "workspace-action-items"}


def default_expectation(item: dict) -> dict:
    """What a bad answer should not do again: repeat its first sentence, or come back empty."""
    out = (item["output_text"] or "").strip()
    if not out:
        return {"regex": r"\S"}
    first = out.split("\n")[0].split(". ")[0][:80].strip()
    return {"not_contains": [first]}


def review_card(item: dict, suites: list[str], reviewer: str) -> None:
    key = item["request_id"]
    with st.container(border=True):
        head, badge = st.columns([5, 1])
        head.markdown(f"**{item['feature']} · {item['task'] or ''}** — {item['model']} · "
                      f"{when(item['sampled_at'])} · {item['latency_ms'] or 0:.0f} ms · "
                      f"customer {item['customer'] or '–'}")
        badges = [":orange-badge[demo]"] if item.get("demo") else []  # sample data, never a real customer's call
        if item["verdict"]:
            badges.append(f":{'green' if item['verdict'] == 'good' else 'red'}-badge[{item['verdict']}]")
        if badges:
            badge.markdown(" ".join(badges))
        left, right = st.columns(2)
        left.caption("Input")
        left.code(item["input_text"][:3000] or "(not kept)", language=None, wrap_lines=True)
        right.caption("Output")
        right.code(item["output_text"][:3000] or "(empty)", language=None, wrap_lines=True)
        note = st.text_input("Note", value=item["note"] or "", key=f"note_{key}", max_chars=4000,
                             placeholder="what is good or wrong about this answer")
        good, bad, _ = st.columns([1, 1, 4])
        if good.button("Good", key=f"good_{key}", icon=":material/thumb_up:", width="stretch"):
            _mark(key, "good", note, reviewer)
        if bad.button("Bad", key=f"bad_{key}", icon=":material/thumb_down:", width="stretch"):
            _mark(key, "bad", note, reviewer)
        if item["verdict"] == "bad":
            _to_eval_case(item, suites, note, reviewer)


def _mark(request_id: str, verdict: str, note: str, reviewer: str) -> None:
    try:
        mark_review(request_id, verdict, note, reviewer=reviewer)
    except AnnotationError as exc:
        st.error(str(exc))
        return
    st.rerun()


def _to_eval_case(item: dict, suites: list[str], note: str, reviewer: str) -> None:
    key = item["request_id"]
    if item["eval_case_id"]:
        st.success(f"Eval case {item['eval_case_id']} made from this call.", icon=":material/task_alt:")
        return
    default_suite = _SUITE_FOR_FEATURE.get(item["feature"], "llm-replays")
    suite_index = suites.index(default_suite) if default_suite in suites else 0
    left, middle, right = st.columns([2, 4, 2], vertical_alignment="bottom")
    suite = left.selectbox("Suite", suites, index=suite_index, key=f"suite_{key}")
    expected_text = middle.text_input("Expected (JSON)", value=json.dumps(default_expectation(item)),
                                      key=f"expected_{key}")
    if right.button("Make eval case", key=f"case_{key}", icon=":material/playlist_add:", type="primary",
                    width="stretch"):
        try:
            expected = json.loads(expected_text)
            case_id = review_to_eval_case(key, suite, expected, note, created_by=reviewer)
        except json.JSONDecodeError as exc:
            st.error(f"Expected must be a JSON object: {exc.msg}")
            return
        except (AnnotationError, EvalError) as exc:
            st.error(str(exc))
            return
        st.toast(f"Eval case {case_id} added to {suite}")
        st.rerun()
