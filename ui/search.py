"""Widgets for Document search and its admin page: identity badges, streamed cited answers with their sources,
ingest progress with ETA, the access editor and the audit table."""

from __future__ import annotations

import html
import time
from datetime import UTC, date, datetime, timedelta
from typing import cast

import plotly.graph_objects as go
import streamlit as st

from core.auth import CLEARANCE_NAMES
from core.search import (
    NOT_COVERED,
    Answer,
    DocumentUnavailable,
    SearchInputError,
    SyncProgress,
    ask,
    audit_csv,
    audit_log,
    audit_users,
    current_sync,
    list_documents,
    open_document,
    passage_blocks,
    set_access,
    start_background_sync,
)
from ui.feedback import working
from ui.text import code, model_markdown, plain

LEVEL_COLOURS = {0: "green", 1: "blue", 2: "orange", 3: "red"}


def level_badge(level: int) -> str:
    return f":{LEVEL_COLOURS.get(level, 'gray')}-badge[{level} · {CLEARANCE_NAMES.get(level, '?')}]"


def identity(principal) -> None:
    groups = " ".join(f":gray-badge[{plain(g)}]" for g in sorted(principal.groups))
    st.markdown(f"Searching as **{plain(principal.display_name)}** — groups {groups} — clearance "
                f"{level_badge(principal.clearance)}")
    st.caption("Only documents shared with one of your groups and at or below your clearance are ever retrieved; "
               "every search is recorded in the audit log.")


def ask_box(principal) -> None:
    st.session_state["search_principal"] = principal  # the document viewer checks access as this person
    with st.form("search_form", border=True):
        question = st.text_input("Question", placeholder="e.g. What is the vacation policy?", max_chars=2000,
                                 key="search_question")
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        k = left.slider("Passages to read", 1, 10, 5, key="search_k",
                        help="How many passages (at most two per document) are put in front of the model")
        submitted = right.form_submit_button("Search", type="primary", icon=":material/search:", width="stretch")
    if submitted:
        answer_question(principal, question, k)
    elif "search_last" in st.session_state:
        last = st.session_state["search_last"]
        show_answer(last["answer"], streamed=False, draft=last["draft"])


def answer_question(principal, question: str, k: int) -> None:
    """Sources first (retrieval is deterministic and fast), then the answer streams below them. If the check in
    code rejects the model's text, the page says so and keeps the draft visible next to what replaced it."""
    status = st.empty()
    working(status, "Searching the documents you can access…")
    try:
        run = ask(principal, question, k=k, channel="ui")
    except SearchInputError as exc:
        status.empty()
        st.error(str(exc), icon=":material/error:")
        return
    status.empty()
    if run.covered:
        sources_list(run.sources, [], run.chunks)
    st.markdown("##### Answer")
    with st.container(border=True):
        slot = st.empty()
        working(slot)
        text = ""
        for piece in run:
            text += piece
            slot.markdown(model_markdown(text) + " ▌")
        answer = cast(Answer, run.answer)  # iterating the run to its end sets the answer
        slot.markdown(model_markdown(answer.text))
        if run.replaced and run.draft.strip():
            st.warning(f"The answer above replaced the model's draft: {answer.fallback_reason}.",
                       icon=":material/rule:")
            with st.expander("The model's draft (not used)"):
                st.markdown(model_markdown(run.draft))
        elif run.replaced and answer.used_llm:
            st.caption(":material/rule: Checked against the sources: citation numbers were added where missing.")
    st.session_state["search_last"] = {"answer": answer, "draft": run.draft if run.replaced else ""}
    show_answer(answer, streamed=True)


def sources_list(sources, citations, chunks=()) -> None:
    """One line per source with an Open button: the document opens inside Keel (no intranet link that may not
    exist), under the same access check, with the passages the answer read highlighted."""
    cited = set(citations)
    st.markdown(f"##### Sources ({len(sources)})")
    for s in sources:
        mark = "cited" if s.doc_id in cited else "retrieved"
        text_col, button_col = st.columns([5, 1], vertical_alignment="center")
        text_col.markdown(f"**[{s.n}]** {plain(s.title)} · {code(s.path)} · {level_badge(s.clearance_level)} · "
                          f":gray[{mark}]")
        if button_col.button("Open", key=f"search-open-{s.n}", width="stretch", help="Read the document here"):
            read = {c.chunk_id for c in chunks if c.doc_id == s.doc_id}
            document_viewer(st.session_state.get("search_principal"), s.doc_id, tuple(sorted(read)))


@st.dialog("Document", width="large")
def document_viewer(principal, doc_id: str, highlight: tuple[str, ...]) -> None:
    try:
        view = open_document(principal, doc_id)
    except DocumentUnavailable as exc:
        st.error(str(exc)[:1].upper() + str(exc)[1:] + ".", icon=":material/lock:")
        return
    st.markdown(f"#### {plain(view.title)}")
    st.caption(f"{code(view.path)} · {level_badge(view.clearance_level)} · the passages the answer read are marked")
    for passage in view.passages:
        if passage.chunk_id in highlight:
            with st.container(border=True):
                st.caption(":orange-background[:material/format_quote: read for this answer]")
                _passage(passage.text)
        else:
            _passage(passage.text)


def _passage(text: str) -> None:
    """Prose as plain text; table rows as a table whose every cell is HTML-escaped text, never the source's markup."""
    for _, block in passage_blocks(text):
        if isinstance(block, str):  # a "text" block; a "table" block is its rows of cells
            if block.strip():
                st.text(block)
        else:
            st.markdown(table_html(block), unsafe_allow_html=True)


def table_html(rows: list[list[str]]) -> str:
    """A passage's table, every cell escaped: a document's own markup shows as text and never runs."""
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="keel-doc-table">{body}</table>'


def show_answer(answer, *, streamed: bool, draft: str = "") -> None:
    if not streamed:
        if answer.covered:
            sources_list(answer.sources, answer.citations, answer.chunks)
        st.markdown("##### Answer")
        with st.container(border=True):
            st.markdown(model_markdown(answer.text))
            if draft.strip():
                st.warning(f"The answer above replaced the model's draft: {answer.fallback_reason}.",
                           icon=":material/rule:")
                with st.expander("The model's draft (not used)"):
                    st.markdown(model_markdown(draft))
    if answer.fallback_reason and not draft.strip() and answer.covered:
        st.info(answer.fallback_reason[:1].upper() + answer.fallback_reason[1:], icon=":material/info:")
    if not answer.covered:
        st.info("No source you can access is close enough to this question (best match "
                f"{answer.best_similarity:.2f}); nothing was sent to the model.", icon=":material/search_off:")
        if answer.sources:
            st.caption("Closest documents you can access (they do not seem to answer it): "
                       + " · ".join(plain(s.title) for s in answer.sources[:3]))
        return
    with st.expander(f"What the model read ({len(answer.chunks)} passages)"):
        number = {s.doc_id: s.n for s in answer.sources}
        for c in answer.chunks:
            st.markdown(f"**[{number[c.doc_id]}] {plain(c.title)}** · similarity {c.similarity:.2f}")
            st.text(c.text)
    if len(answer.phrasings) > 1:
        st.caption("Also searched as: " + " · ".join(f"“{p}”" for p in answer.phrasings[1:]))


# -- admin -------------------------------------------------------------------------------------------------------


def sync_panel(roots, user: str) -> None:
    st.session_state["search_admin_user"] = user  # who cancels, for the job's record
    labels = {str(r): r for r in roots}
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    choice = left.selectbox("Folder to index", list(labels), key="search_sync_root",
                            help="The demo corpus, or `documents/` in the data directory")
    if right.button("Run ingest / re-sync", type="primary", icon=":material/sync:", width="stretch"):
        labels[choice].mkdir(parents=True, exist_ok=True)
        job = start_background_sync(labels[choice], started_by=user, allowed_roots=list(roots))
        if job.root != str(labels[choice]):
            st.toast(f"A sync of {job.root} is already running")
    _index_status()
    latest = current_sync()
    if latest is not None and latest.running:
        st.fragment(_sync_progress, run_every=0.5)()
    elif latest is not None:
        _sync_result(latest)


def _index_status() -> None:
    """What the index holds now, shown before any sync has run in this process (issue 19 #10)."""
    docs = list_documents()
    if not docs:
        st.info("The index is empty: pick a folder and run an ingest.", icon=":material/folder_off:")
        return
    newest = max(d.indexed_at for d in docs)
    when = datetime.fromtimestamp(newest, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    roots = len({d.root for d in docs})
    st.success(f"Index ready: {len(docs)} documents ({sum(d.chunks for d in docs)} passages) from {roots} "
               f"folder(s); last indexed {when}.", icon=":material/check_circle:")


def _sync_progress() -> None:
    job = current_sync()
    if job is None or not job.running:
        st.rerun(scope="app")
    p = job.progress
    if not isinstance(p, SyncProgress):  # None until the job reports its first counts
        st.progress(0.0, text=f"Queued: {job.root}…" if job.status == "queued" else f"Scanning {job.root}…")
        _cancel_button(job)
        return
    eta = f" · about {p.eta_s:.0f}s left" if p.eta_s is not None and p.phase == "indexing" else ""
    st.progress(p.done / max(1, p.total), text=f"{p.phase}: {p.done}/{p.total} files · {p.indexed} indexed · "
                                               f"{p.unchanged} unchanged · {p.refused} refused · "
                                               f"{p.elapsed_s:.0f}s{eta}")
    _cancel_button(job)


def _cancel_button(job) -> None:
    """Any admin on any replica can stop a sync; documents finished so far stay indexed (each is atomic)."""
    from core.jobs import JobError, cancel

    st.caption(f"Started by {job.started_by} · job {job.id}")
    if st.button("Cancel sync", key=f"search_sync_cancel_{job.id}", icon=":material/cancel:"):
        try:
            cancel(job.id, by=st.session_state.get("search_admin_user", "admin"))
        except JobError as exc:
            st.toast(str(exc))


def _sync_result(job) -> None:
    if job.error:
        st.error(f"The sync of {job.root} stopped: {job.error}", icon=":material/error:")
        return
    report = job.report
    st.success(f"Last sync ({job.started_by}): {report.summary()}", icon=":material/task_alt:")
    if report.refused:
        st.warning(f"{len(report.refused)} file(s) refused — fix them and sync again:", icon=":material/block:")
        st.dataframe(report.refused, hide_index=True, width="stretch")
    if report.skipped:
        with st.expander(f"{len(report.skipped)} file(s) skipped (not a document type)"):
            st.dataframe(report.skipped, hide_index=True, width="stretch")


def documents_table() -> list:
    docs = list_documents()
    st.dataframe([{"document": d.doc_id, "title": d.title, "groups": ", ".join(d.access_groups),
                   "clearance": d.clearance_level, "chunks": d.chunks, "kind": d.kind,
                   "edited by admin": d.access_edited,
                   "indexed": datetime.fromtimestamp(d.indexed_at, UTC).strftime("%Y-%m-%d %H:%M")}
                  for d in docs], hide_index=True, width="stretch", height=320)
    return docs


def access_editor(docs, known_groups: list[str], user: str) -> None:
    if not docs:
        st.info("No documents indexed yet: run an ingest above.")
        return
    by_id = {d.doc_id: d for d in docs}
    doc_id = st.selectbox("Document", list(by_id), key="search_access_doc",
                          format_func=lambda d: f"{by_id[d].title} ({d})")
    doc = by_id[doc_id]
    options = sorted(set(known_groups) | set(doc.access_groups))
    with st.form("search_access_form"):
        groups = st.multiselect("Groups that may read it", options, default=list(doc.access_groups),
                                accept_new_options=True)
        level = st.select_slider("Clearance level", options=[0, 1, 2, 3], value=doc.clearance_level,
                                 format_func=lambda v: f"{v} · {CLEARANCE_NAMES[v]}")
        saved = st.form_submit_button("Save access", type="primary", icon=":material/lock:")
    if saved:
        try:
            rows = set_access(doc_id, groups, level, actor=user)
        except ValueError as exc:
            st.error(str(exc), icon=":material/error:")
        else:
            st.success(f"{doc_id}: {rows} passages now readable by {', '.join(sorted(groups))} at clearance ≥ "
                       f"{level}. This holds until the file itself changes.", icon=":material/task_alt:")


def audit_view() -> None:
    users = audit_users()
    c1, c2, c3, c4 = st.columns(4)
    user = c1.selectbox("User", ["(everyone)"] + users, key="audit_user")
    channel = c2.selectbox("Channel", ["(all)", "ui", "api", "cli", "eval", "admin"], key="audit_channel")
    text = c3.text_input("Query contains", key="audit_text", max_chars=200)
    doc_id = c4.text_input("Document id", key="audit_doc", max_chars=255)
    today = datetime.now(UTC).date()
    picked = st.date_input("Between", value=(today - timedelta(days=30), today), key="audit_dates")
    dates: tuple[date | None, ...] = tuple(picked) if isinstance(picked, (tuple, list)) else (picked,)
    start, end = (dates + (None, None))[:2]  # while a range is being picked only its start is set
    end = end or start
    since = datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp() if start else None
    until = (datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)).timestamp() \
        if end else None
    entries = audit_log(user=None if user == "(everyone)" else user, channel=None if channel == "(all)" else channel,
                        text=text or None, doc_id=doc_id or None, since=since, until=until, limit=5000)
    st.caption(f"{len(entries)} retrievals (newest first; up to 5,000 shown and exported)")
    if entries:
        st.plotly_chart(_per_day(entries), key="audit_chart")
    st.dataframe([{"time (UTC)": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e.created_at)), "user": e.user,
                   "channel": e.channel, "query": e.query, "documents": ", ".join(e.doc_ids),
                   "chunks": len(e.chunk_ids), "filter": e.filter_expr, "ms": e.latency_ms} for e in entries],
                 hide_index=True, width="stretch", height=360)
    st.download_button("Export CSV", audit_csv(entries), file_name="search-audit.csv", mime="text/csv",
                        icon=":material/download:", disabled=not entries)


def _per_day(entries) -> go.Figure:
    counts: dict[tuple[str, str], int] = {}
    for e in entries:
        day = time.strftime("%Y-%m-%d", time.gmtime(e.created_at))
        counts[(day, e.user)] = counts.get((day, e.user), 0) + 1
    fig = go.Figure()
    for user in sorted({u for _, u in counts}):
        days = sorted(d for d, u in counts if u == user)
        fig.add_bar(x=days, y=[counts[(d, user)] for d in days], name=user)
    fig.update_xaxes(type="category")
    fig.update_layout(barmode="stack", height=240, margin=dict(l=10, r=10, t=30, b=10),
                      title="Retrievals per day by user", legend=dict(orientation="h"))
    return fig


__all__ = ["NOT_COVERED", "access_editor", "ask_box", "audit_view", "documents_table", "identity", "sync_panel"]
