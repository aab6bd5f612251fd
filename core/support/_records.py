"""The support data layer: conversation, message and handoff rows, and the queries and transcript reads the
dialogue and the agent console share.

Every message is its own INSERT (append-only), committed before anything slow happens; state changes on the
conversation row are conditional UPDATEs (`WHERE status = ...`), so a customer and an agent writing at the same
moment never lose a message or overwrite each other, and a restart resumes from what the rows say. Kept apart
from the two sides that write them so neither has to import the other to read a conversation.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from sqlalchemy import update
from sqlmodel import col, select

from core import db
from core.support._errors import ConversationNotFound, EmptyMessage, MessageTooLong
from core.support._handoff import TranscriptLine
from core.support._router import SupportRoute
from core.support._tools import account_for
from core.tables import SupportConversation, SupportCsat, SupportHandoff, SupportMessage

BOT = "halden-bot"
MAX_MESSAGE_CHARS = 50_000


@dataclass(frozen=True)
class Customer:
    """Who is chatting. `email` is a *verified* address, the only key that links a sign-in to a support account;
    an identity whose email is not verified has `email=""` and the claimed address in `unverified_email`."""

    sub: str
    email: str = ""
    name: str = ""
    unverified_email: str = ""


@dataclass(frozen=True)
class Message:
    id: int
    conversation_id: int
    role: str  # customer | bot | agent | note | system
    author: str
    text: str
    created_at: float
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Conversation:
    id: int
    customer_sub: str
    account_id: str | None
    status: str
    intent: str | None
    route: SupportRoute | None
    handled_by: str
    model: str
    bot_confidence: float | None
    priority: str | None
    assigned_to: str | None
    created_at: float
    updated_at: float
    escalated_at: float | None
    resolved_at: float | None
    pending_action: dict | None
    rephrase_asked: bool
    csat: int | None = None
    csat_comment: str | None = None


@dataclass(frozen=True)
class Handoff:
    conversation_id: int
    reason: str
    summary: str
    summary_source: str
    entities: dict
    intent: str | None
    bot_confidence: float | None
    suggested_resolution: str
    priority: str
    created_at: float


def clean_text(text, *, limit: int = MAX_MESSAGE_CHARS, what: str = "message") -> str:
    """The text as it will be stored: NUL replaced (PostgreSQL rejects it); empty or over `limit` is refused."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not isinstance(text, str):
        raise EmptyMessage(f"the {what} must be text")
    text = text.replace("\x00", "\ufffd")
    if not text.strip():
        raise EmptyMessage(f"the {what} is empty: type something first")
    if len(text) > limit:
        raise MessageTooLong(f"the {what} has {len(text):,} characters; the limit is {limit:,}. "
                             "Please shorten it (nothing was sent).")
    return text


def saved_id(row: SupportConversation | SupportMessage) -> int:
    """The id of a row read from or flushed to the database; a row never flushed has none, and reading it back
    as a Conversation or Message would hand out an id of None."""
    if row.id is None:
        raise ValueError(f"this {type(row).__name__} has not been saved yet, so it has no id: flush it first")
    return row.id


def to_conversation(row: SupportConversation, csat: SupportCsat | None = None) -> Conversation:
    pending = json.loads(row.pending_action) if row.pending_action else None
    return Conversation(
        id=saved_id(row), customer_sub=row.customer_sub, account_id=row.account_id, status=row.status, intent=row.intent,
        route=SupportRoute(row.route) if row.route else None, handled_by=row.handled_by, model=row.model,
        bot_confidence=row.bot_confidence, priority=row.priority, assigned_to=row.assigned_to,
        created_at=row.created_at, updated_at=row.updated_at, escalated_at=row.escalated_at,
        resolved_at=row.resolved_at, pending_action=pending, rephrase_asked=row.rephrase_asked,
        csat=csat.score if csat else None, csat_comment=csat.comment if csat else None)


def to_message(row: SupportMessage) -> Message:
    return Message(id=saved_id(row), conversation_id=row.conversation_id, role=row.role, author=row.author, text=row.text,
                   created_at=row.created_at, meta=json.loads(row.meta) if row.meta else {})


def append_message(conversation_id: int, role: str, author: str, text: str, meta: dict | None = None) -> Message:
    """One INSERT in its own transaction: once this returns, the message survives anything."""
    now = time.time()
    with db.session() as s:
        row = SupportMessage(conversation_id=conversation_id, role=role, author=author[:255], text=text,
                             meta=json.dumps(meta, default=str) if meta else None, created_at=now)
        s.add(row)
        s.exec(update(SupportConversation).where(col(SupportConversation.id) == conversation_id)
               .values(updated_at=now))
        s.flush()
        return to_message(row)


def load_row(conversation_id: int) -> SupportConversation:
    with db.session() as s:
        row = s.get(SupportConversation, conversation_id)
        if row is None:
            raise ConversationNotFound(f"there is no conversation {conversation_id}")
        return row


def owned_row(conversation_id: int, customer: Customer) -> SupportConversation:
    row = load_row(conversation_id)
    if row.customer_sub != customer.sub:
        raise ConversationNotFound(f"there is no conversation {conversation_id}")  # same answer as missing
    return row


def set_fields(conversation_id: int, *, when_status: tuple[str, ...] | None = None, **values: object) -> bool:
    """A conditional UPDATE of the conversation row; True if it changed."""
    values.setdefault("updated_at", time.time())
    with db.session() as s:
        stmt = update(SupportConversation).where(col(SupportConversation.id) == conversation_id)
        if when_status:
            stmt = stmt.where(col(SupportConversation.status).in_(when_status))
        return s.exec(stmt.values(**values)).rowcount == 1


def open_conversation(customer: Customer) -> Conversation:
    """The customer's current open conversation, or a new one (a resolved one stays closed)."""
    with db.session() as s:
        row = s.exec(select(SupportConversation).where(SupportConversation.customer_sub == customer.sub,
                                                       SupportConversation.status != "resolved")
                     .order_by(col(SupportConversation.id).desc())).first()
        if row is not None:
            return to_conversation(row)
    return new_conversation(customer)


def new_conversation(customer: Customer) -> Conversation:
    now = time.time()
    with db.session() as s:
        account = account_for(s, customer.email)
        row = SupportConversation(customer_sub=customer.sub, account_id=account.id if account else None,
                                  created_at=now, updated_at=now)
        s.add(row)
        s.flush()
        return to_conversation(row)


def latest_conversation(customer: Customer) -> Conversation | None:
    with db.session() as s:
        row = s.exec(select(SupportConversation).where(SupportConversation.customer_sub == customer.sub)
                     .order_by(col(SupportConversation.id).desc())).first()
    return get_conversation(saved_id(row)) if row else None


def get_conversation(conversation_id: int) -> Conversation:
    with db.session() as s:
        row = s.get(SupportConversation, conversation_id)
        if row is None:
            raise ConversationNotFound(f"there is no conversation {conversation_id}")
        return to_conversation(row, s.get(SupportCsat, conversation_id))


def customer_conversation(conversation_id: int, customer: Customer) -> Conversation:
    owned_row(conversation_id, customer)
    return get_conversation(conversation_id)


def list_messages(conversation_id: int, *, after_id: int = 0, include_notes: bool = False) -> list[Message]:
    """Messages in the order they were written (by id); internal notes only when asked for."""
    with db.session() as s:
        stmt = select(SupportMessage).where(SupportMessage.conversation_id == conversation_id,
                                            col(SupportMessage.id) > after_id)
        if not include_notes:
            stmt = stmt.where(SupportMessage.role != "note")
        return [to_message(r) for r in s.exec(stmt.order_by(col(SupportMessage.id))).all()]


def get_handoff(conversation_id: int) -> Handoff | None:
    with db.session() as s:
        row = s.exec(select(SupportHandoff).where(SupportHandoff.conversation_id == conversation_id)).first()
    if row is None:
        return None
    return Handoff(conversation_id=row.conversation_id, reason=row.reason, summary=row.summary,
                   summary_source=row.summary_source, entities=json.loads(row.entities or "{}"), intent=row.intent,
                   bot_confidence=row.bot_confidence, suggested_resolution=row.suggested_resolution,
                   priority=row.priority, created_at=row.created_at)


def transcript(conversation_id: int) -> list[TranscriptLine]:
    return [TranscriptLine(m.role, m.author, m.text, m.created_at) for m in list_messages(conversation_id)]


def latest_bot_texts(conversation_id: int, *, before: int, limit: int = 2) -> list[str]:
    """The bot's latest replies before a message, newest first (what the customer has just been shown)."""
    with db.session() as s:
        return list(s.exec(select(SupportMessage.text).where(SupportMessage.conversation_id == conversation_id,
                                                             SupportMessage.role == "bot",
                                                             col(SupportMessage.id) < before)
                           .order_by(col(SupportMessage.id).desc()).limit(limit)).all())


def take_pending(conversation_id: int, raw: str) -> bool:
    """Clear exactly this proposal, atomically: of two concurrent confirmations only one gets True."""
    with db.session() as s:
        stmt = (update(SupportConversation)
                .where(col(SupportConversation.id) == conversation_id, col(SupportConversation.status) == "bot",
                       col(SupportConversation.pending_action) == raw)
                .values(pending_action=None, updated_at=time.time()))
        return s.exec(stmt).rowcount == 1


def customer_texts_since(conversation_id: int, from_message_id: int | None) -> list[str]:
    """What the customer wrote from one message on (the messages of a pending action), oldest first."""
    with db.session() as s:
        return list(s.exec(select(SupportMessage.text).where(SupportMessage.conversation_id == conversation_id,
                                                             SupportMessage.role == "customer",
                                                             col(SupportMessage.id) >= int(from_message_id or 0))
                           .order_by(col(SupportMessage.id))).all())
