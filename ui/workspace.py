"""Workspace widgets: the document picker, AI task toolbar, streamed result panel and undo."""

from __future__ import annotations

from typing import cast

import streamlit as st

from core.llm import LLMError
from core.workspace import (
    CreditsExhausted,
    DocumentConflict,
    NotAMember,
    Param,
    TaskResult,
    WorkspaceError,
    credit_status,
    get_document,
    list_tasks,
    run_task,
    tidy_output,
    update_document,
)
from ui.feedback import failure_note, working
from ui.text import model_markdown

# The containers of the widgets that change which document the editor shows (the picker radio, each popover's
# Create, Delete): the editor holds keystrokes made between their click and the switch, for the document switched to.
DOCUMENT_SWITCHES = (".st-key-ws_doc", "[class*='st-key-new-doc-create-']", ".st-key-ws-delete-doc")

# Toolbar groups: which tasks sit together, in reading order.
TASK_GROUPS = {
    "Edit": ["improve_writing", "fix_grammar", "make_shorter", "make_longer", "continue_writing"],
    "Understand": ["summarize", "explain", "find_action_items"],
}


def _state(key: str, default):
    if key not in st.session_state:
        st.session_state[key] = default
    return st.session_state[key]


def editor_revision(doc_id: int) -> int:
    """Bumped only when Python rewrites the document (replace, insert, undo), so typing never resets the editor."""
    return _state("ws_editor_rev", {}).setdefault(doc_id, 0)


def bump_revision(doc_id: int) -> None:
    revs = _state("ws_editor_rev", {})
    revs[doc_id] = revs.get(doc_id, 0) + 1


def save_handed_over(principal, doc_id: str, version: int, text: str) -> None:
    """Save text the editor typed into another document just before a switch (nothing typed is ever lost)."""
    seen = _state("ws_handed_over", set())
    mark = (doc_id, version, hash(text))
    if mark in seen:  # the browser keeps reporting it; save it once, never over later edits made elsewhere
        return
    seen.add(mark)
    try:
        other = get_document(principal, int(doc_id))
    except (WorkspaceError, ValueError):
        return
    if other.content != text and editor_revision(other.id) == version:
        try:
            update_document(principal, other.id, content=text, expected_version=other.version)
        except DocumentConflict:
            pass


def credits_badge(workspace_id: str) -> None:
    status = credit_status(workspace_id)
    left = status.left  # None: no limit (a paid plan)
    if left is None:
        st.caption(":material/all_inclusive: Paid plan: unlimited AI responses")
    else:
        color = "red" if status.exhausted else "orange" if left <= 3 else "green"
        st.caption(f":{color}[●] {left} of {status.limit} AI responses left in {status.month} "
                   f"(free plan) · resets {status.resets_on:%-d %b %Y}")


def task_toolbar(key: str) -> tuple[str, dict] | None:
    """Buttons for every task; returns (task_id, params) for the pressed one."""
    tasks = {t.id: t for t in list_tasks()}
    pressed: tuple[str, dict] | None = None
    for ids in TASK_GROUPS.values():
        with st.container(horizontal=True, wrap=True):  # labels keep their full width and wrap to a new row
            for task_id in ids:
                if st.button(tasks[task_id].label, key=f"{key}-{task_id}", width="content"):
                    pressed = (task_id, {})
    with st.container(border=True):
        c1, c2, c3, c4 = st.columns([3, 2, 3, 2], vertical_alignment="bottom")  # full button labels
        language = c1.selectbox("Translate to", _choices(tasks["translate"].params[0]), key=f"{key}-lang")
        if c2.button("Translate", key=f"{key}-translate", width="stretch"):
            pressed = ("translate", {"language": language})
        tone = c3.selectbox("Tone", _choices(tasks["change_tone"].params[0]), key=f"{key}-tone")
        if c4.button("Change tone", key=f"{key}-tone-btn", width="stretch"):
            pressed = ("change_tone", {"tone": tone})
        c1, c2 = st.columns([5, 1])
        instruction = c1.text_input("Ask AI about the selection", key=f"{key}-instr", max_chars=500,
                                    placeholder="e.g. turn this into a bulleted list")
        if c2.button("Ask AI", key=f"{key}-ask", width="stretch"):
            pressed = ("ask_ai", {"instruction": instruction})
        c1, c2 = st.columns([5, 1])
        question = c1.text_input("Ask about this page", key=f"{key}-q", max_chars=500,
                                 placeholder="e.g. what did we decide about the launch date?")
        if c2.button("Ask page", key=f"{key}-askpage", width="stretch"):
            pressed = ("ask_about_page", {"question": question})
    return pressed


def _choices(param: Param) -> tuple[str, ...]:
    """The allow-list a toolbar selectbox offers; a parameter without one would draw an empty, useless box."""
    if param.choices is None:
        raise ValueError(f"task parameter {param.name!r} has no choices for the toolbar to offer")
    return param.choices


def run_and_stream(principal, workspace_id: str, request: dict) -> dict | None:
    """Run a task, stream it into the page, and return the finished result for the panel (None on error).

    "Working…" shows from the click to the first token; a call that fails part-way keeps what it wrote, with a
    plain note (the internal error stays in the request log).
    """
    box = st.empty()
    working(box)
    try:
        run = run_task(principal, workspace_id, request["task"], request["selection"], request["page"],
                       request["params"])
    except (WorkspaceError, CreditsExhausted, NotAMember) as exc:
        box.empty()
        st.error(str(exc), icon=":material/block:")
        return None
    except LLMError:
        box.empty()
        st.error(failure_note(kept=False))
        return None
    if run.notice:
        st.info(run.notice, icon=":material/content_cut:")
    text = ""
    try:
        with run:
            for chunk in run:
                text = "" if chunk.reset else text + chunk.text
                if text:
                    box.markdown(model_markdown(text) + " ▌")
    except LLMError:
        box.empty()
        partial = tidy_output(text)
        if not partial:
            st.error(failure_note(kept=False, credit=True))
            return None
        finished = {**request, "text": partial, "items": None, "notice": failure_note(kept=True, credit=True),
                    "request_id": f"partial-{id(run)}", "meta": "incomplete answer · the model stopped part-way"}
        st.session_state["ws_result"] = finished
        return finished
    r = cast(TaskResult, run.result)  # the stream ran to its end without an error, and that sets the result
    finished = {**request, "text": r.text, "items": r.items, "notice": r.notice, "request_id": r.request_id,
                "meta": f"{r.provider}/{r.model} · {r.tokens_out} tokens · first token {r.ttft_ms or 0:.0f} ms · "
                        f"{r.latency_ms:.0f} ms · prompt {r.prompt_id}@{r.prompt_version}"
                        + (" · answer cut at the token limit" if r.cut_off else "")}
    st.session_state["ws_result"] = finished  # kept before drawing anything else: a rerun now loses nothing
    box.empty()
    return finished


def todo_lines(items: list[dict]) -> str:
    lines = []
    for item in items:
        extra = [f"@{item['assignee']}"] if item.get("assignee") else []
        extra += [f"due {item['due']}"] if item.get("due") else []
        lines.append(f"- [ ] {item['task']}" + (f" ({', '.join(extra)})" if extra else ""))
    return "\n".join(lines)


def apply_change(principal, doc, new_content: str, select: tuple[int, int], *, record_undo: bool = True) -> bool:
    """Save an accepted change, remember the old text for Undo, and reset the editor to the new text."""
    try:
        update_document(principal, doc.id, content=new_content, expected_version=doc.version)
    except DocumentConflict as exc:
        st.error(str(exc))
        return False
    if record_undo:
        _state("ws_undo", []).append((doc.id, doc.content))
    st.session_state["ws_select"] = select
    bump_revision(doc.id)
    return True


def accept(principal, doc, result: dict, output: str, mode: str) -> bool:
    """Replace the selection with the output, or insert it below the selection."""
    start, end = result["start"], result["end"]
    if mode == "replace":
        new, select = doc.content[:start] + output + doc.content[end:], (start, start + len(output))
    else:
        at = max(start, end)
        new, select = doc.content[:at] + "\n\n" + output + "\n" + doc.content[at:], (at + 2, at + 2 + len(output))
    return apply_change(principal, doc, new, select)


def undo_last(principal, doc) -> bool:
    """Restore the text from before this document's most recent accepted AI change."""
    stack = _state("ws_undo", [])
    for i in range(len(stack) - 1, -1, -1):
        if stack[i][0] == doc.id:
            _, previous = stack.pop(i)
            return apply_change(principal, doc, previous, (0, 0), record_undo=False)
    return False
