"""Workspace: documents with AI task buttons that stream into a result panel; credits per workspace."""

import streamlit as st

from core.workspace import (
    DocumentConflict,
    WorkspaceError,
    create_document,
    delete_document,
    get_document,
    list_documents,
    update_document,
    usage_by_member,
    workspaces_for,
)
from ui import workspace as w
from ui.editor import editor
from ui.session import require_principal
from ui.text import model_markdown, plain

principal = require_principal()
st.title("Workspace")

spaces = {ws.id: ws for ws in workspaces_for(principal)}
left, main = st.columns([1.4, 3])  # wide enough for "New document" at 900 px
with left:
    ws_id = st.selectbox("Workspace", list(spaces), format_func=lambda i: f"{spaces[i].name} ({spaces[i].plan})")
    w.credits_badge(ws_id)
    docs = list_documents(principal, ws_id)
    # A fresh key after each Create: the popover closes and its title box is empty for the next document.
    made = st.session_state.get("ws_created", 0)
    with st.popover("New document", icon=":material/note_add:", width="stretch", key=f"new-doc-{made}"):
        title = st.text_input("Title", max_chars=200, key=f"new-doc-title-{made}")
        if st.button("Create", type="primary", key=f"new-doc-create-{made}"):
            try:
                doc = create_document(principal, ws_id, title or "Untitled")
                st.session_state["ws_doc"] = st.session_state["ws_doc_last"] = doc.id
                st.session_state["ws_created"] = made + 1
                st.rerun()
            except WorkspaceError as exc:
                st.error(str(exc))
    if not docs:
        st.info("No documents yet: create one to start writing.")
        st.stop()
    ids = [d.id for d in docs]
    # One keyed widget owns the choice: an index computed from state would give the radio a new identity on
    # every switch, so the next click went to the old widget and snapped back.
    if st.session_state.get("ws_doc") not in ids:  # first visit, a deleted document, or back from another page
        last = st.session_state.get("ws_doc_last")
        st.session_state["ws_doc"] = last if last in ids else ids[0]
    doc_id = st.radio("Documents", ids, key="ws_doc",
                      format_func=lambda i: plain(next(d.title for d in docs if d.id == i)))
    st.session_state["ws_doc_last"] = doc_id

doc = get_document(principal, doc_id)
with main:
    head = st.columns([4, 1])
    new_title = head[0].text_input("Title", doc.title, max_chars=200, label_visibility="collapsed")
    if new_title != doc.title and new_title.strip():
        doc = update_document(principal, doc.id, title=new_title)
    with head[1].popover("Delete", icon=":material/delete:"):
        st.markdown(f"Delete **{plain(doc.title)}**? This cannot be undone.")
        if st.button("Delete document", type="primary", key="ws-delete-doc"):
            delete_document(principal, doc.id)
            st.session_state.pop("ws_doc", None)
            st.rerun()

    state = editor(doc.content, version=w.editor_revision(doc.id), key="ws-editor", doc=str(doc.id),
                   select=st.session_state.pop("ws_select", None), switches=w.DOCUMENT_SWITCHES)
    if state.other is not None:  # typed into the previous document just before the switch: save it there
        w.save_handed_over(principal, *state.other)
    if state.text != doc.content:  # autosave what the user typed
        try:
            doc = update_document(principal, doc.id, content=state.text, expected_version=doc.version)
        except DocumentConflict as exc:
            st.warning(str(exc))
    can_undo = any(u[0] == doc.id for u in st.session_state.get("ws_undo", []))
    if can_undo and st.button("Undo last AI change", icon=":material/undo:") and w.undo_last(principal, doc):
        st.rerun()

    pressed = w.task_toolbar(key=f"tools-{doc.id}")
    if pressed:
        task_id, params = pressed
        request = {"task": task_id, "params": params, "selection": state.selection, "page": state.text,
                   "start": state.start, "end": state.end, "doc": doc.id}
        st.session_state["ws_last_request"] = request
        st.session_state["ws_result"] = w.run_and_stream(principal, ws_id, request)
        if st.session_state["ws_result"] is not None:
            st.rerun()  # the credit badge above shows the response just spent

    result = st.session_state.get("ws_result")
    if result and result["doc"] == doc.id:
        with st.container(border=True):
            st.markdown(f"**{result['task'].replace('_', ' ').capitalize()}**")
            if result["notice"]:
                st.info(result["notice"], icon=":material/content_cut:")
            if result["items"] is not None:
                if result["items"]:
                    for i, item in enumerate(result["items"]):
                        st.checkbox(w.todo_lines([item])[6:], key=f"item-{result['request_id']}-{i}")
                else:
                    st.write("No action items found in the selection.")
                output = w.todo_lines(result["items"])
            else:
                st.markdown(model_markdown(result["text"]))
                output = result["text"]
            st.caption(result["meta"])
            row = st.container(horizontal=True, wrap=True)  # full labels at any width, wrapping when narrow
            has_selection = result["end"] > result["start"]
            if result["items"] is None and row.button("Replace selection", type="primary",
                                                       disabled=not has_selection):
                if w.accept(principal, doc, result, output, "replace"):
                    st.session_state.pop("ws_result")
                    st.rerun()
            label = "Insert as to-dos" if result["items"] is not None else "Insert below"
            if row.button(label, disabled=not output) and w.accept(principal, doc, result, output, "insert"):
                st.session_state.pop("ws_result")
                st.rerun()
            with row.popover("Copy", icon=":material/content_copy:"):
                st.code(output, language=None, wrap_lines=True)
            if row.button("Retry", icon=":material/refresh:"):
                st.session_state["ws_result"] = w.run_and_stream(principal, ws_id, st.session_state["ws_last_request"])
                st.rerun()
            if row.button("Discard"):
                st.session_state.pop("ws_result")
                st.rerun()

if spaces[ws_id].role == "admin":  # full width: e-mail addresses do not fit the narrow left column
    with st.expander("Usage this month by member"):
        st.dataframe([{"member": u.user_sub, "responses": u.spent, "running": u.in_flight}
                      for u in usage_by_member(principal, ws_id)], hide_index=True, width="stretch")
