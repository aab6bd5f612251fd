"""Support chat: a customer talks to the Halden bot (FAQ answers, account and billing tools) or a person."""

import streamlit as st

from core.support import (
    SupportError,
    cancel_action,
    close_conversation,
    confirm_action,
    customer_conversation,
    customer_from_principal,
    get_article,
    latest_conversation,
    list_messages,
    new_conversation,
    open_conversation,
    rate,
    request_human,
    send_message,
)
from ui import support as ui
from ui.session import require_principal
from ui.text import plain

principal = require_principal()
customer = customer_from_principal(principal)
ui.start_warm_up()

slug = st.query_params.get("article")
if slug:
    article = get_article(slug)
    with st.container(border=True):
        if article is None:
            st.warning("That help-centre article does not exist.")
        else:
            st.markdown(f"### {plain(article.title)}")
            st.markdown(article.body)
        if st.button("Close article", icon=":material/close:"):
            del st.query_params["article"]
            st.rerun()


def current():
    conv_id = st.session_state.get("support_conv")
    if conv_id is not None:
        try:
            return customer_conversation(conv_id, customer)
        except SupportError:
            pass
    conv = latest_conversation(customer)
    if conv is None or (conv.status == "resolved" and conv.csat is not None):
        conv = open_conversation(customer)
    st.session_state["support_conv"] = conv.id
    return conv


conv = current()
prompt = st.chat_input("Write your message…", max_chars=50_000, disabled=conv.status == "resolved")
if prompt is not None:
    try:
        with st.spinner("The bot is thinking…"):
            send_message(conv.id, customer, prompt, summarize_async=True)
    except SupportError as exc:
        st.error(str(exc))
    conv = customer_conversation(conv.id, customer)

head = st.columns([3, 1.3, 1.3, 1.2], vertical_alignment="center")
head[0].title("Support")
with head[1]:
    with_person = conv.status in ("waiting", "claimed")
    if st.button("Talk to a human", icon=":material/support_agent:", type="primary", width="stretch",
                 disabled=with_person or conv.status == "resolved",
                 help="A person from our team takes over; they see this whole conversation."):
        request_human(conv.id, customer, summarize_async=True)
        st.rerun()
with head[2]:
    if conv.status == "bot" and st.button("Solved, thanks", icon=":material/check_circle:", width="stretch",
                                          help="Close this conversation and rate it"):
        close_conversation(conv.id, customer)
        st.rerun()
with head[3]:
    if st.button("New conversation", icon=":material/add_comment:", width="stretch"):
        st.session_state["support_conv"] = new_conversation(customer).id
        st.rerun()
st.caption("Halden Home help centre. Ask anything: the bot answers from our articles, checks your orders, plan, "
           "verification email and invoices, and a person takes over whenever you press **Talk to a human**.")


def live_transcript(conv_id: int, seen_status: str, seen_pending: bool) -> None:
    """While a person has the conversation this polls SQL every 2 s, so their reply appears by itself."""
    fresh = customer_conversation(conv_id, customer)
    if fresh.status != seen_status or (fresh.pending_action is not None) != seen_pending:
        st.rerun()  # the buttons around the transcript depend on these: redraw the whole page
    ui.status_badge(fresh)
    messages = list_messages(conv_id)
    if not messages:
        st.chat_message("assistant", avatar=":material/smart_toy:").markdown(
            "Hi! I'm the Halden support bot. How can I help today?")
    ui.transcript(messages)
    if fresh.status == "waiting":
        st.caption("You're in the queue. A person will reply here; you can keep writing in the meantime.")


# Only a person can change the conversation behind the customer's back, so only then is it worth polling.
polling = conv.status in ("waiting", "claimed")
(st.fragment(live_transcript, run_every=2.0) if polling else live_transcript)(
    conv.id, conv.status, conv.pending_action is not None)

pending = conv.pending_action
if pending and pending.get("stage") == "confirm" and conv.status == "bot":
    with st.container(border=True):
        st.markdown("**The bot is waiting for your confirmation** before it changes your account.")
        yes, no, _ = st.columns([1, 1, 4])
        if yes.button("Confirm", type="primary", icon=":material/check:"):
            confirm_action(conv.id, customer)
            st.rerun()
        if no.button("Cancel", icon=":material/close:"):
            cancel_action(conv.id, customer)
            st.rerun()

if conv.status == "resolved":
    ui.rating_form(conv, lambda score, comment: rate(conv.id, customer, score, comment))
