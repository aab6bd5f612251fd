"""Widgets for the support pages: chat transcript, status, rating, the agent's handoff package, CSAT chart,
and the "Add to eval dataset" form."""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Literal, TypedDict

import plotly.graph_objects as go
import streamlit as st

from core.prompts import remove_scaffolding
from core.support import Conversation, Handoff, Message, Segment
from ui.text import model_markdown, plain

_AVATARS = {"customer": "user", "bot": ":material/smart_toy:", "agent": ":material/support_agent:",
            "system": ":material/info:", "note": ":material/sticky_note_2:"}
_BadgeColor = Literal["red", "orange", "yellow", "blue", "green", "violet", "gray", "grey", "primary"]  # st.badge's
_STATUS: dict[str, tuple[str, _BadgeColor]] = {
    "bot": ("Bot", "blue"), "waiting": ("Waiting for a person", "orange"), "claimed": ("With a person", "green"),
    "resolved": ("Resolved", "gray")}
LONG_MESSAGE = 2000


class CsatFilters(TypedDict):
    """The CSAT page's filters, passed as keywords to core.support's overview, segments and conversation_rows."""

    since: float | None
    intents: Collection[str]
    handled_by: Collection[str]
    models: Collection[str]


def start_warm_up() -> None:
    """Load the encoder, classifier and KB index in the background (once per process; the server starts it too)."""
    from core.services import start_warm_up as start

    start()


def escape_markdown(text: str) -> str:
    """Show a person's text as typed: no links, images, headings or HTML from markdown syntax (keeps line breaks,
    unlike ui.text.plain, because messages have paragraphs)."""
    return "\n".join(plain(line) for line in str(text).split("\n"))


def waited(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def status_badge(conv: Conversation) -> None:
    label, color = _STATUS.get(conv.status, (conv.status, "gray"))
    extra = f" · {conv.assigned_to}" if conv.status == "claimed" and conv.assigned_to else ""
    st.badge(f"{label}{extra}", color=color)


def _author(m: Message, agent_view: bool) -> str:
    if m.role == "agent":
        return f"**Support agent** · {plain(m.author)}" if agent_view else "**Support agent**"
    if m.role == "note":
        return f"**Internal note** · {plain(m.author)}"
    if m.role == "bot":
        return "**Halden bot**"
    if m.role == "customer":
        return f"**Customer** · {plain(m.author)}" if agent_view else "**You**"
    return ""


def render_message(m: Message, *, agent_view: bool = False) -> None:
    with st.chat_message("user" if m.role == "customer" else "assistant", avatar=_AVATARS.get(m.role)):
        head = _author(m, agent_view)
        when = time.strftime("%H:%M", time.localtime(m.created_at))
        if head:
            st.caption(f"{head} · {when}")
        trusted = m.role in ("bot", "system")  # our own markdown; people's text is shown as typed
        text = model_markdown(remove_scaffolding(m.text)) if trusted else escape_markdown(m.text)
        if len(m.text) > LONG_MESSAGE:
            st.markdown(text[:1500] + "…")
            with st.expander(f"Show the whole message ({len(m.text):,} characters)"):
                st.text(m.text)
        elif m.role == "note":
            st.info(text, icon=":material/lock:")
        else:
            st.markdown(text)
        if agent_view and m.role == "bot" and m.meta.get("decision"):
            d = m.meta["decision"]
            st.caption(f"route {d['route']} · intent {d['intent']} {d['confidence']:.2f} · {d['reason']}")


def transcript(messages: list[Message], *, agent_view: bool = False) -> None:
    for m in messages:
        render_message(m, agent_view=agent_view)


def rating_form(conv: Conversation, on_submit) -> None:
    """Stars 1–5 and an optional comment, shown once the conversation is resolved.

    `on_submit(score, comment)` returns the rated Conversation, or raises SupportError; the thanks is drawn in the
    same run (no rerun that a polling fragment could race).
    """
    from core.support import SupportError

    with st.container(border=True):
        if conv.csat is not None:
            st.success(f"Thank you! You rated this conversation {conv.csat}/5.", icon=":material/star:")
            return
        with st.form(f"rate-{conv.id}", border=False):  # one submit: stars and comment arrive together
            st.markdown("**How did we do?** Rate this conversation.")
            stars = st.feedback("stars", key=f"stars-{conv.id}")
            comment = st.text_area("Comment (optional)", key=f"comment-{conv.id}", max_chars=2000, height=80)
            submitted = st.form_submit_button("Submit rating", type="primary")
        if submitted:
            if stars is None:
                st.error("Pick from 1 to 5 stars first.")
                return
            try:
                rated = on_submit(stars + 1, comment)
            except SupportError as exc:
                st.error(str(exc))
                return
            st.success(f"Thank you! You rated this conversation {rated.csat}/5.", icon=":material/star:")


def package_panel(conv: Conversation, handoff: Handoff | None) -> None:
    """The handoff package: what the agent reads before answering, so the customer never repeats themselves."""
    if handoff is None:
        st.caption("No handoff package (the conversation was never handed off).")
        return
    flag = ":red-badge[HIGH priority]" if handoff.priority == "high" else ":gray-badge[normal priority]"
    confidence = "—" if handoff.bot_confidence is None else f"{handoff.bot_confidence:.2f}"
    since = waited((conv.resolved_at or time.time()) - handoff.created_at)
    st.markdown(f"{flag} · intent **{handoff.intent or 'UNKNOWN'}** · bot confidence **{confidence}** · "
                f"{'handled in' if conv.resolved_at else 'waiting'} **{since}**")
    st.markdown(f"**Why handed off:** {escape_markdown(handoff.reason)}")
    source = "LLM summary" if handoff.summary_source == "llm" else "extractive summary: the model gave none"
    st.markdown(f"**Summary** <small>({source})</small>", unsafe_allow_html=True)
    st.info(escape_markdown(handoff.summary))
    if handoff.summary_source == "llm":
        st.caption("Written by the model: check names and numbers against the transcript.")
    ents = handoff.entities or {}
    chips = [f"`{v}`" for key in ("accounts", "orders", "invoices") for v in ents.get(key, [])]
    st.markdown("**Entities:** " + (" ".join(chips) if chips else "none found"))
    st.markdown(f"**Suggested resolution:** {model_markdown(handoff.suggested_resolution)}")


def csat_figure(segments: list[Segment]) -> go.Figure:
    """Average CSAT per segment, worst first, coloured by escalation rate; bar labels show the count."""
    rated = [s for s in segments if s.avg_csat is not None]
    names = [f"{s.intent} · {s.handled_by} · {s.model.split('/')[-1]}" for s in rated]
    fig = go.Figure(go.Bar(
        x=[s.avg_csat for s in rated], y=names, orientation="h",
        marker=dict(color=[s.escalation_rate * 100 for s in rated], colorscale="OrRd", cmin=0, cmax=100,
                    colorbar=dict(title="escalated %")),
        text=[f"{s.avg_csat:.1f} (n={s.rated})" for s in rated], textposition="auto",
        hovertemplate="%{y}<br>avg CSAT %{x:.2f}<extra></extra>"))
    fig.update_layout(title="Average CSAT by intent × handled by × model (worst first)",
                      margin=dict(l=10, r=10, t=40, b=10), height=max(260, 34 * len(rated) + 90),
                      xaxis=dict(range=[0, 5], title="average CSAT (1–5)"),
                      yaxis=dict(autorange="reversed"))
    return fig


def eval_case_form(conversation_id: int, principal, *, key: str) -> None:
    """"Add to eval dataset": the first customer message as input, the expected intent and route, notes."""
    from core.support import (
        EVAL_SUITES,
        LABELS,
        ROUTES,
        SupportError,
        SupportRoute,
        add_conversation_to_eval,
        eval_case_draft,
    )

    draft = eval_case_draft(conversation_id)
    if not draft["eligible"]:
        st.caption("Only escalated conversations or ones rated below 3 can become eval cases.")
        return
    with st.popover("Add to eval dataset", icon=":material/playlist_add:"):
        with st.form(f"eval-{key}-{conversation_id}"):
            suite = st.selectbox("Suite", EVAL_SUITES)
            text = st.text_area("Input (the customer's message)", draft["input"], max_chars=5000)
            expected = draft["expected"]
            intent = st.selectbox("Expected intent", LABELS, index=LABELS.index(expected["intent"])
                                  if expected["intent"] in LABELS else 0)
            route = st.selectbox("Expected route", ROUTES, index=ROUTES.index(expected["route"])
                                 if expected["route"] in ROUTES else ROUTES.index(SupportRoute.HUMAN))
            notes = st.text_input("Notes", f"from support conversation {conversation_id}", max_chars=2000)
            if st.form_submit_button("Add case", type="primary"):
                try:
                    case_id = add_conversation_to_eval(conversation_id, suite=suite, input_text=text,
                                                       expected={"intent": intent, "route": str(route)}, notes=notes,
                                                       created_by=principal.sub)
                except (SupportError, ValueError) as exc:
                    st.error(str(exc))
                except ImportError:
                    st.error("The eval pipeline (core.evals.add_eval_case) is not available in this build.")
                else:
                    st.success(f"Added eval case #{case_id} to {suite}.")
