"""Handoff console: the escalation queue for support agents; claim, read the package, reply, note, resolve."""

import streamlit as st

from core.support import (
    SupportError,
    add_note,
    agent_reply,
    claim,
    get_conversation,
    get_handoff,
    list_messages,
    queue,
    resolve,
)
from ui import support as ui
from ui.session import require_principal

principal = require_principal("support_agent", "admin")
agent = principal.sub
st.title("Handoff console")


@st.fragment(run_every=1.0)
def live_queue() -> None:
    """The queue refreshes itself every second: high priority first, then the longest waiting."""
    items = queue()
    waiting = [i for i in items if i.status == "waiting"]
    m = st.columns(3)
    m[0].metric("Waiting", len(waiting))
    m[1].metric("High priority", sum(i.priority == "high" for i in waiting))
    m[2].metric("Longest wait", ui.waited(max((i.waiting_s for i in waiting), default=0)))
    if not items:
        st.info("The queue is empty.", icon=":material/inbox:")
    selected = st.session_state.get("console_conv")
    for item in items:
        with st.container(border=True):
            top = st.columns([3, 1], vertical_alignment="center")
            flag = ":red-badge[HIGH]" if item.priority == "high" else ":gray-badge[normal]"
            who = "waiting" if item.status == "waiting" else f"claimed by {item.assigned_to}"
            top[0].markdown(f"{flag} **#{item.conversation_id}** · {item.intent or 'UNKNOWN'} · {who}")
            if top[1].button("Open", key=f"open-{item.conversation_id}", width="stretch",
                             type="primary" if item.conversation_id == selected else "secondary"):
                st.session_state["console_conv"] = item.conversation_id
                st.rerun()
            st.caption(f"{ui.escape_markdown(item.customer_sub)} · waited {ui.waited(item.waiting_s)} · "
                       f"{ui.escape_markdown(item.reason)}")
            if item.last_customer_message:
                st.caption("“" + ui.escape_markdown(item.last_customer_message[:160]) + "”")


def live_conversation(conv_id: int) -> None:
    """New customer messages appear by themselves. No full rerun from here: it could swallow a reply being sent."""
    ui.transcript(list_messages(conv_id, include_notes=True), agent_view=True)


left, right = st.columns([1, 1.6], gap="large")
with left:
    st.subheader("Queue")
    live_queue()

with right:
    conv_id = st.session_state.get("console_conv")
    if conv_id is None:
        st.info("Open a conversation from the queue.", icon=":material/arrow_back:")
        st.stop()
    conv = get_conversation(conv_id)
    title = st.columns([3, 1], vertical_alignment="center")
    title[0].subheader(f"Conversation #{conv.id} · {ui.escape_markdown(conv.customer_sub)}")
    with title[1]:
        ui.status_badge(conv)
    if conv.status == "waiting" and st.button("Claim", type="primary", icon=":material/front_hand:"):
        try:
            claim(conv.id, agent)
        except SupportError as exc:
            st.error(str(exc))
        st.rerun()
    with st.expander("Handoff package", expanded=True, icon=":material/inventory_2:"):
        ui.package_panel(conv, get_handoff(conv.id))
        ui.eval_case_form(conv.id, principal, key="console")
    st.markdown("**Transcript**")
    if conv.status in ("waiting", "claimed"):  # the customer may still write: poll
        st.fragment(live_conversation, run_every=2.0)(conv.id)
    else:
        live_conversation(conv.id)

    mine = conv.status == "claimed" and conv.assigned_to == agent
    if conv.status == "claimed" and not mine:
        st.warning(f"{conv.assigned_to} has this conversation.")
    if mine:
        with st.form("reply", clear_on_submit=True):
            reply = st.text_area("Reply to the customer", max_chars=50_000, height=100)
            send, note_button = st.columns(2)
            as_reply = send.form_submit_button("Send reply", type="primary", icon=":material/send:", width="stretch")
            as_note = note_button.form_submit_button("Add internal note", icon=":material/sticky_note_2:",
                                                     width="stretch")
        if as_reply or as_note:
            try:
                (agent_reply if as_reply else add_note)(conv.id, agent, reply)
            except SupportError as exc:
                st.error(str(exc))
            else:
                st.rerun()
        if st.button("Resolve", icon=":material/task_alt:"):
            resolve(conv.id, agent)
            st.rerun()
    elif conv.status != "resolved":
        with st.form("note", clear_on_submit=True):
            note = st.text_area("Internal note", max_chars=50_000, height=80)
            if st.form_submit_button("Add internal note", icon=":material/sticky_note_2:"):
                try:
                    add_note(conv.id, agent, note)
                except SupportError as exc:
                    st.error(str(exc))
                else:
                    st.rerun()
    else:
        st.success("Resolved." + (f" Customer rating: {conv.csat}/5." if conv.csat else " Not rated yet."))
