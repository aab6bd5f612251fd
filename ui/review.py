"""PR review widgets: the input form, a review run with progress, the diff with comments inline at their lines
(accept / dismiss on each), filters, the tool timeline (Gantt-style) and the exports."""

from __future__ import annotations

import html
import json
import logging
import time

import plotly.graph_objects as go
import streamlit as st

from core.jobs import get as get_job
from core.review import (
    CATEGORIES,
    DEMO_REPO,
    SEVERITIES,
    Comment,
    ReviewError,
    Severity,
    accept,
    cached_review_result,
    decode_diff,
    demo_git_repo,
    dismiss,
    github_review,
    list_refs,
    parse_diff,
    review_job_error,
    review_job_result,
    sample_prs,
    sarif,
    submit_review,
    undo_decision,
    wait_for_review,
)
from ui.text import code, model_markdown, plain

SEVERITY_COLOURS = {Severity.BLOCKER: "#C62828", Severity.MAJOR: "#EF6C00", Severity.MINOR: "#F9A825",
                    Severity.NIT: "#78909C"}
CATEGORY_ICONS = {"correctness": ":material/bug_report:", "security": ":material/shield:",
                  "performance": ":material/speed:", "quality": ":material/auto_fix_high:"}
VERDICTS = {"request_changes": (":material/block:", "Changes requested", "red"),
            "comment": (":material/comment:", "Comments", "orange"),
            "approve": (":material/check_circle:", "No problems found", "green")}
_CSS = """
<style>
.kr-diff {font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12.5px; border-collapse: collapse;
          width: 100%; table-layout: fixed; margin: 0;}
.kr-diff td {padding: 0 6px; white-space: pre-wrap; word-break: break-all; vertical-align: top; line-height: 1.45;}
.kr-diff td.n {width: 3.2em; color: #8a8f98; text-align: right; user-select: none;}
.kr-diff td.k {width: 1.2em; color: #8a8f98; user-select: none;}
.kr-diff tr.add td {background: #e6ffec;} .kr-diff tr.add td.n {background: #ccffd8;}
.kr-diff tr.del td {background: #ffebe9;} .kr-diff tr.del td.n {background: #ffd7d5;}
.kr-diff tr.hunk td {background: #ddf4ff; color: #57606a;}
.kr-diff tr.flag td.n {box-shadow: inset 3px 0 0 #C62828;}
</style>
"""


# -- input ---------------------------------------------------------------------------------------------------


def review_form() -> dict | None:
    """The three ways in: a sample PR, a pasted/uploaded diff, or two refs of a local git repository."""
    source = st.segmented_control("Review", ["Sample PR", "Paste or upload a diff", "Git refs"],
                                  default="Sample PR", key="prr_source")
    request: dict | None = None
    if source == "Sample PR":
        samples = {s.id: s for s in sample_prs()}
        sample_id = st.selectbox("Sample pull request", list(samples), key="prr_sample",
                                 format_func=lambda i: f"{samples[i].title}  ({i})")
        st.caption(f"{samples[sample_id].description} Against the demo repository `shopline`.")
        request = {"kind": "diff", "diff": samples[sample_id].diff, "repo": str(DEMO_REPO),
                   "label": samples[sample_id].title}
    elif source == "Paste or upload a diff":
        upload = st.file_uploader("Upload a .diff or .patch", type=["diff", "patch", "txt"], key="prr_upload",
                                  max_upload_size=4)
        pasted = st.text_area("…or paste a unified diff (`git diff`, `diff -u`)", height=180, key="prr_paste",
                              placeholder="diff --git a/shop/orders.py b/shop/orders.py\n--- a/shop/orders.py\n"
                                          "+++ b/shop/orders.py\n@@ -1,3 +1,4 @@ ...")
        repo = st.text_input("Repository the diff applies to", value=str(DEMO_REPO), key="prr_repo",
                             help="A local folder inside the allowed roots (KEEL_REVIEW_ROOTS), checked out at the PR's base or at its head: either is detected per file.")
        data = upload.getvalue() if upload is not None else pasted
        if data:
            request = {"kind": "diff", "diff": data, "repo": repo,
                       "label": upload.name if upload is not None else "pasted diff"}
    else:
        repo = st.text_input("Local git repository", value="", key="prr_git_repo",
                             placeholder="empty = the demo repository as git (main + one branch per sample PR)")
        try:
            path = repo.strip() or str(demo_git_repo())
            refs = list_refs(path)
        except ReviewError as exc:
            st.error(str(exc), icon=":material/folder_off:")
            return None
        left, right = st.columns(2)
        base = left.selectbox("Base", refs, index=refs.index("main") if "main" in refs else 0, key="prr_base")
        head = right.selectbox("Head", refs, index=min(1, len(refs) - 1), key="prr_head")
        st.caption("Reviews what Head changes since it left Base (`git diff base...head`, as CI sees a PR), with the "
                   "tools reading the tree at Head.")
        request = {"kind": "refs", "repo": path, "base": base, "head": head, "label": f"{base}…{head}"}
    return request


def run_review(request: dict, *, use_llm: bool, use_cache: bool, user: str | None, cache_first: bool = False):
    """Run the review as a durable job (core.jobs) and show its progress here; returns the result or None (error
    shown). The job survives a page reload and is visible, and cancellable, with `keel jobs` from any replica.
    `cache_first` (Re-run): a diff reviewed before comes straight from the cache, without waiting for a free worker."""
    if use_cache and cache_first:
        cached = cached_review_result(request, use_llm=use_llm, user=user)
        if cached is not None:
            return cached
    try:
        job_id = submit_review(request, use_llm=use_llm, use_cache=use_cache, user=user)
    except ReviewError as exc:
        st.error(str(exc), icon=":material/error:")
        return None
    started = time.monotonic()
    bar = st.progress(0.0, text="Reviewing…")

    def show(job) -> None:
        bar.progress(job.fraction, text=f"{job.progress.get('message') or job.status} · "
                                        f"{time.monotonic() - started:.0f} s")

    try:
        job = wait_for_review(job_id, on_poll=show)  # a deadline: no worker means a plain message, not a hang
    except ReviewError as exc:
        bar.empty()
        st.error(str(exc), icon=":material/hourglass_disabled:")
        return None
    bar.empty()
    error = review_job_error(job)
    if error:
        if job.status == "failed":
            logging.getLogger(__name__).error("review job %s failed: %s", job.id, job.error)
        st.error(error, icon=":material/error:")
        return None
    return review_job_result(job)


def start_model_pass(request: dict, *, use_cache: bool, user: str | None) -> dict:
    """Run the review again with the model as a background job; the page already shows the tool findings.

    Returns the state the page polls: started and the job's id."""
    return {"started": time.monotonic(), "job_id": submit_review(request, use_llm=True, use_cache=use_cache,
                                                                 user=user)}


@st.fragment(run_every=1.0)
def model_pass_status(key: str = "prr_model") -> None:
    """A live line while the model writes its explanations; swaps its result in (with a note) when it arrives."""
    state = st.session_state.get(key)
    if not state:
        return
    job = get_job(state["job_id"])
    if not job.status.finished:
        st.info(f"The tool findings are below. The model is writing its explanations… "
                f"{time.monotonic() - state['started']:.0f} s", icon=":material/hourglass_top:")
        return
    st.session_state.pop(key, None)
    result = review_job_result(job)
    if result is not None:
        st.session_state["prr_result"] = result
        st.session_state["prr_note"] = "Updated with the model's explanations."
    else:
        st.session_state["prr_note"] = ("The model could not explain the findings this time; the comments below are "
                                        "the tools'.")
    st.rerun()


# -- the result ----------------------------------------------------------------------------------------------


def header(result) -> None:
    icon, label, colour = VERDICTS[result.verdict]
    st.markdown(f"### :{colour}[{label}]")
    st.caption(result.summary)
    if result.cached:
        st.success("Served from the review cache: this exact diff was reviewed before, so no tool or model ran.",
                   icon=":material/bolt:")
    cols = st.columns(6)
    tools = [e for e in result.timeline if not str(e["tool"]).startswith("model")]
    model_calls = [e for e in result.timeline if str(e["tool"]).startswith("model")]
    cols[0].metric("Comments", len([c for c in result.comments if c.status != "dismissed"]))
    cols[1].metric("Tool calls", len(tools), help=f"in {result.iterations} round(s); see the tool timeline")
    cols[2].metric("Tokens in/out", f"{result.tokens_in:,}/{result.tokens_out:,}", help=result.model)
    cols[3].metric("Cost", f"${result.cost_usd:.5f}" if result.cost_usd < 0.01 else f"${result.cost_usd:.2f}",
                   help="list price of the model call (the embedded model has a shadow price)")
    cols[4].metric("Review time", f"{result.wall_ms / 1000:.1f} s" if not result.cached else
                   f"{result.wall_ms:.0f} ms",
                   help=(f"model call {model_calls[0]['ended_s'] - model_calls[0]['started_s']:.1f} s"
                         if model_calls else "no model call"))
    cols[5].metric("Tier", result.triage.get("tier", "-"), help="; ".join(result.triage.get("reasons", [])))
    if result.model_summary:
        st.info(f"**Model's note** ({plain(result.model)}): {model_markdown(result.model_summary)}",
                icon=":material/smart_toy:")
    for notice in result.notices:
        if "cache" in notice:
            continue
        st.warning(notice, icon=":material/info:")


def filters(result) -> tuple[list[str], list[str]]:
    left, right = st.columns(2)
    present = {c.severity for c in result.comments}
    counts = {s: sum(c.severity == s for c in result.comments) for s in present}
    severities = left.pills("Severity", list(SEVERITIES), selection_mode="multi", default=list(SEVERITIES),
                            key="prr_f_sev", format_func=lambda s: f"{s} ({counts[s]})" if s in counts else s)
    categories = right.pills("Category", list(CATEGORIES), selection_mode="multi", default=list(CATEGORIES),
                             key="prr_f_cat")
    return list(severities or []), list(categories or [])


def _row(kind: str, old, new, text: str, flagged: bool = False) -> str:
    cls = {"+": "add", "-": "del", " ": "ctx"}[kind] + (" flag" if flagged else "")
    return (f'<tr class="{cls}"><td class="n">{old or ""}</td><td class="n">{new or ""}</td>'
            f'<td class="k">{html.escape(kind.strip())}</td><td>{html.escape(text) or " "}</td></tr>')


def _table(rows: list[str]) -> None:
    if rows:
        st.html(_CSS + '<table class="kr-diff">' + "".join(rows) + "</table>")


def comment_card(result, c: Comment, user: str | None, key: str) -> None:
    colour = SEVERITY_COLOURS.get(c.severity, "#888")
    with st.container(border=True, key=f"prr_card_{key}"):
        st.markdown(
            f'<span style="background:{colour};color:white;border-radius:4px;padding:1px 6px;font-size:0.8em">'
            f"{c.severity}</span> **{c.category}** · {code(f'{c.path}:{c.line}')}"
            + (f" · also at {', '.join(map(str, c.also_at))}" if c.also_at else "")
            + f" · <span style='color:#888;font-size:0.85em'>{c.source} · {html.escape(c.rule or 'model')} · "
              f"confidence {c.confidence:.2f}</span>",
            unsafe_allow_html=True)
        st.markdown(model_markdown(c.message))
        if c.explanation:
            st.markdown(f":material/smart_toy: *{model_markdown(c.explanation)}*")
        if c.suggestion:
            st.markdown(f"**Suggested fix:** {model_markdown(c.suggestion)}")
        if c.status == "accepted":
            st.caption(":material/check: Accepted")
            return
        a, d, _ = st.columns([1, 1, 5])
        if a.button("Accept", key=f"prr_acc_{key}", icon=":material/check:"):
            accept(result, c, user)
            c.status = "accepted"
            st.toast("Accepted.")
            st.rerun()
        if d.button("Dismiss", key=f"prr_dis_{key}", icon=":material/close:"):
            dismiss(result, c, user)
            c.status = "dismissed"
            st.session_state.setdefault("prr_dismissed", []).append((result.repo, c.fingerprint, c.message[:80]))
            st.toast("Dismissed: it will not be raised again for this repository.")
            st.rerun()


def diff_with_comments(result, severities: list[str], categories: list[str], user: str | None) -> None:
    """Each file's hunks, with the comments that pass the filters shown right under their line."""
    try:
        diff = parse_diff(decode_diff(result.diff_text))
    except ReviewError as exc:
        st.error(str(exc))
        return
    shown = [c for c in result.comments if c.status != "dismissed" and c.severity in severities and
             c.category in categories]
    by_line: dict[tuple[str, int], list[Comment]] = {}
    for c in shown:
        by_line.setdefault((c.path, c.line), []).append(c)
    hidden = len([c for c in result.comments if c.status != "dismissed"]) - len(shown)
    if hidden:
        st.caption(f"{hidden} comment(s) hidden by the filters.")
    reviewed = {f["path"]: f["reviewed"] for f in result.files}
    for index, f in enumerate(diff.files):
        count = sum(1 for (p, _), cs in by_line.items() if p == f.display_path for _ in cs)
        title = f"{plain(f.display_path)}  ·  +{len(f.added)} −{f.removed_count}" + (
            f"  ·  {count} comment(s)" if count else "")
        if f.binary:
            title += "  ·  binary, not reviewed"
        elif not reviewed.get(f.display_path, True):
            title += "  ·  summarised, not reviewed"
        with st.expander(title, expanded=bool(count) or len(diff.files) <= 3):
            if f.binary:
                st.caption("Binary file: not shown.")
                continue
            rows: list[str] = []
            for h in f.hunks:
                rows.append(f'<tr class="hunk"><td class="n"></td><td class="n"></td><td class="k"></td>'
                            f"<td>@@ -{h.old_start},{h.old_count} +{h.new_start},{h.new_count} @@ "
                            f"{html.escape(h.header)}</td></tr>")
                for kind, old, new, text in h.lines:
                    here = by_line.get((f.path, new), []) if kind == "+" and new is not None else []
                    rows.append(_row(kind, old, new, text, bool(here)))
                    if here:
                        _table(rows)
                        rows = []
                        for n, c in enumerate(here):
                            comment_card(result, c, user, f"{index}_{new}_{n}_{c.fingerprint[:8]}")
            _table(rows)


def timeline_figure(timeline: list[dict]) -> go.Figure:
    """Gantt-style: one bar per tool call from its start to its end, coloured by round, outlined red when it did
    not finish. The model call is left out (seconds against milliseconds would flatten the tools)."""
    colours = {1: "#5B8FF9", 2: "#61DDAA", 3: "#F6BD16", 4: "#9270CA"}
    calls = [e for e in timeline if not str(e["tool"]).startswith("model")]
    fig = go.Figure()
    labels = []
    for i, e in enumerate(calls):
        args = e.get("args") or {}
        detail = args.get("query") or args.get("name") or args.get("linter") or args.get("path") or ""
        labels.append(f"{i + 1:>2}. {e['tool']} {str(detail)[:28]}")
    for round_key in dict.fromkeys(e["round"] for e in calls):
        items = [(labels[i], e) for i, e in enumerate(calls) if e["round"] == round_key]
        fig.add_bar(
            y=[label for label, _ in items], x=[max(0.002, e["ended_s"] - e["started_s"]) * 1000 for _, e in items],
            base=[e["started_s"] * 1000 for _, e in items], orientation="h", name=f"round {round_key}",
            marker=dict(color=colours.get(round_key, "#888"),
                        line=dict(color=["#C62828" if e["status"] != "ok" else "rgba(0,0,0,0)" for _, e in items],
                                  width=2)),
            customdata=[[e["status"], e.get("reason", ""), e.get("error") or ""] for _, e in items],
            hovertemplate="%{y}<br>from %{base:.0f} ms, %{x:.0f} ms long<br>status %{customdata[0]}<br>"
                          "%{customdata[1]}<br>%{customdata[2]}<extra></extra>")
    fig.update_layout(title="Tool calls (bars that overlap ran in parallel)", barmode="overlay",
                      height=max(240, 28 * len(calls) + 110), margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", y=-0.2), xaxis_title="ms since the review started")
    fig.update_yaxes(autorange="reversed")
    return fig


def timeline_caption(result) -> str:
    calls = [e for e in result.timeline if not str(e["tool"]).startswith("model")]
    if not calls:
        return "No tool calls."
    busy = sum(e["ended_s"] - e["started_s"] for e in calls)
    span = max(e["ended_s"] for e in calls) - min(e["started_s"] for e in calls)
    model = [e for e in result.timeline if str(e["tool"]).startswith("model")]
    text = (f"{len(calls)} tool calls in {result.iterations} round(s): {busy * 1000:.0f} ms of tool time in "
            f"{span * 1000:.0f} ms of wall time ({busy / span if span else 1:.1f}× from running them in parallel).")
    if model:
        m = model[0]
        text += (f" Then the model call ({m['args'].get('tier')}): {m['ended_s'] - m['started_s']:.1f} s, "
                 f"{m['status']}" + (f" ({m['error']})" if m.get("error") else "") + ".")
    return text


def exports(result, container=None) -> None:
    left, right = (container or st).columns(2)
    left.download_button("GitHub review JSON", json.dumps(github_review(result), indent=2),
                         file_name=f"review-{result.diff_hash[:10]}.github.json", mime="application/json",
                         icon=":material/download:", key="prr_dl_gh", width="stretch")
    right.download_button("SARIF", json.dumps(sarif(result), indent=2),
                          file_name=f"review-{result.diff_hash[:10]}.sarif", mime="application/sarif+json",
                          icon=":material/download:", key="prr_dl_sarif", width="stretch")


def dismissed_panel() -> None:
    items = st.session_state.get("prr_dismissed", [])
    if not items:
        return
    with st.expander(f"Dismissed in this session ({len(items)})"):
        for i, (repo, fingerprint, message) in enumerate(list(items)):
            left, right = st.columns([5, 1])
            left.caption(f"{message} …")
            if right.button("Undo", key=f"prr_undo_{i}_{fingerprint[:8]}"):
                undo_decision(repo, fingerprint)
                items.remove((repo, fingerprint, message))
                st.toast("Restored: re-run the review to see it again.")
                st.rerun()
