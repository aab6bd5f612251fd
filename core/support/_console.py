"""Handoff and the agent console: queue a conversation for a person with a package (summary, entities, a first
step), then the queue, claiming, agent replies and notes, resolving, and the delayed LLM summary.

Apart from the customer dialogue because a different person drives it (an agent, often on another replica), and
its only link back is `escalate`, which the dialogue calls.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from sqlalchemy import update
from sqlmodel import col, select

from core import db
from core.support._errors import AlreadyClaimed, NotAllowed
from core.support._handoff import (
    TranscriptLine,
    entities_for,
    extractive_summary,
    format_transcript,
    priority_for,
    suggest_resolution,
)
from core.support._records import (
    BOT,
    Conversation,
    Message,
    append_message,
    clean_text,
    get_conversation,
    list_messages,
    load_row,
    saved_id,
    set_fields,
    transcript,
)
from core.support._router import RouteDecision
from core.tables import SupportConversation, SupportHandoff, SupportMessage

SUMMARY_DELAY_S = 5.0
HANDOFF_TEXT = ("I've passed this to a person on our support team. They can see everything you've written here, so "
                "you won't need to repeat yourself. Stay on this page: their reply will appear here.")


def escalate(conversation_id: int, reason: str, *, decision: RouteDecision | None = None,
             summarize_async: bool = False) -> list[Message]:
    """Hand the conversation to a person: queue it with a package, tell the customer. Idempotent."""
    row = load_row(conversation_id)
    now = time.time()
    intent = row.intent or (decision.intent if decision else None)
    confidence = row.bot_confidence if row.bot_confidence is not None else (decision.confidence if decision else None)
    flags = decision.flags if decision else ()
    priority = priority_for(intent, confidence, flags)
    if not set_fields(conversation_id, when_status=("bot",), status="waiting", handled_by="human",
                      escalated_at=now, priority=priority, pending_action=None, intent=intent):
        return []  # already with a person (or resolved)
    messages = list_messages(conversation_id)
    lines = [TranscriptLine(m.role, m.author, m.text, m.created_at) for m in messages]
    entities = entities_for(lines, row.account_id)
    last_tool = next((m.meta.get("tool") for m in reversed(messages) if m.role == "bot" and m.meta.get("tool")
                      and not m.meta.get("tool_error")), None)
    last = next((line.text for line in reversed(lines) if line.role == "customer"), "")
    top = None
    if last.strip():
        from core.support._kb import MIN_SCORE, search

        hits = search(last[:2000], k=1)
        if hits and hits[0].score >= MIN_SCORE:
            top = (hits[0].article.title, hits[0].article.link)
    with db.session() as s:
        s.add(SupportHandoff(conversation_id=conversation_id, reason=reason[:300],
                             summary=extractive_summary(lines, reason), summary_source="extractive",
                             entities=json.dumps(entities), intent=intent, bot_confidence=confidence,
                             suggested_resolution=suggest_resolution(intent, reason, flags, entities, top,
                                                                     last_tool),
                             priority=priority, created_at=now))
    message = append_message(conversation_id, "system", BOT, HANDOFF_TEXT,
                             {"handoff": reason, "priority": priority, "flags": list(flags),
                              **({"decision": decision.as_dict()} if decision else {})})  # its branch feeds coverage
    if summarize_async:
        # After a short pause: the customer's page and the agent's queue show the handoff first, before the
        # model (which takes both cores while it runs) starts writing the summary. A durable job (core.jobs): any
        # replica may write it, and it survives this process.
        from core.support._jobs import schedule_summary

        schedule_summary(conversation_id, SUMMARY_DELAY_S)
    else:
        improve_summary(conversation_id)
    return [message]


def improve_summary(conversation_id: int) -> bool:
    """Replace the extractive summary with the LLM's; on any failure the extractive one stays."""
    from core.llm import LLMError
    from core.support._llm import llm_summary

    row = load_row(conversation_id)
    text = format_transcript(transcript(conversation_id))
    try:
        summary, _model = llm_summary(text, user=row.customer_sub, customer=row.account_id)
    except (LLMError, Exception):
        return False
    with db.session() as s:
        s.exec(update(SupportHandoff).where(col(SupportHandoff.conversation_id) == conversation_id)
               .values(summary=summary, summary_source="llm"))
    return True


@dataclass(frozen=True)
class QueueItem:
    conversation_id: int
    customer_sub: str
    status: str
    priority: str
    intent: str | None
    reason: str
    summary: str
    assigned_to: str | None
    escalated_at: float
    waiting_s: float
    last_customer_message: str


def queue(*, include_claimed: bool = True) -> list[QueueItem]:
    """Handed-off conversations: high priority first, then the longest waiting."""
    statuses = ("waiting", "claimed") if include_claimed else ("waiting",)
    now = time.time()
    with db.session() as s:
        rows = s.exec(select(SupportConversation, SupportHandoff)
                      .join(SupportHandoff, col(SupportHandoff.conversation_id) == SupportConversation.id, isouter=True)
                      .where(col(SupportConversation.status).in_(statuses))).all()
        last = {}
        for conv, _ in rows:
            msg = s.exec(select(SupportMessage).where(SupportMessage.conversation_id == conv.id,
                                                      SupportMessage.role == "customer")
                         .order_by(col(SupportMessage.id).desc())).first()
            last[conv.id] = msg.text if msg else ""
    items = [QueueItem(conversation_id=saved_id(c), customer_sub=c.customer_sub, status=c.status,
                       priority=c.priority or "normal", intent=c.intent, reason=h.reason if h else "",
                       summary=h.summary if h else "", assigned_to=c.assigned_to,
                       escalated_at=c.escalated_at or c.updated_at, waiting_s=now - (c.escalated_at or c.updated_at),
                       last_customer_message=last.get(c.id, "")[:300]) for c, h in rows]
    items.sort(key=lambda i: (i.priority != "high", i.escalated_at))
    return items


def claim(conversation_id: int, agent: str) -> Conversation:
    """Take a waiting conversation; exactly one agent wins a race."""
    if set_fields(conversation_id, when_status=("waiting",), status="claimed", assigned_to=agent[:255]):
        append_message(conversation_id, "system", agent, "A person from our support team joined the conversation.")
        return get_conversation(conversation_id)
    row = load_row(conversation_id)
    if row.status == "claimed" and row.assigned_to == agent:
        return get_conversation(conversation_id)
    if row.status == "claimed":
        raise AlreadyClaimed(f"{row.assigned_to} already has this conversation")
    raise NotAllowed(f"conversation {conversation_id} is {row.status}, not waiting for an agent")


def _agent_owns(conversation_id: int, agent: str) -> SupportConversation:
    row = load_row(conversation_id)
    if row.status != "claimed" or row.assigned_to != agent:
        raise NotAllowed("claim the conversation before replying or resolving it")
    return row


def agent_reply(conversation_id: int, agent: str, text) -> Message:
    text = clean_text(text, what="reply")
    _agent_owns(conversation_id, agent)
    return append_message(conversation_id, "agent", agent, text)


def add_note(conversation_id: int, agent: str, text) -> Message:
    """An internal note: agents see it, the customer never does."""
    text = clean_text(text, what="note")
    load_row(conversation_id)
    return append_message(conversation_id, "note", agent, text)


def resolve(conversation_id: int, agent: str) -> Conversation:
    _agent_owns(conversation_id, agent)
    if set_fields(conversation_id, when_status=("claimed",), status="resolved", resolved_at=time.time()):
        append_message(conversation_id, "system", agent,
                       "This conversation was marked resolved. How did we do? Please rate it below.")
    return get_conversation(conversation_id)
