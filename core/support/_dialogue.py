"""Conversations in SQL: customer messages, bot turns (route → answer or tool), handoff, agent work, CSAT.

Every message is its own INSERT (append-only), committed before anything slow happens; state changes on the
conversation row are conditional UPDATEs (`WHERE status = ...`), so a customer and an agent writing at the same
moment never lose a message or overwrite each other, and a restart resumes from what the rows say.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field

from sqlalchemy import update
from sqlmodel import select

from core import db
from core.support._classifier import classify
from core.support._errors import (
    AlreadyClaimed,
    ConversationClosed,
    ConversationNotFound,
    EmptyMessage,
    InvalidRating,
    MessageTooLong,
    NotAllowed,
)
from core.support._handoff import (
    TranscriptLine,
    entities_for,
    extractive_summary,
    format_transcript,
    priority_for,
    suggest_resolution,
)
from core.support._router import MUTATING_TOOLS, RouteDecision, looks_like_injection, plan_route, requested_plan
from core.support._tools import (
    CONFIRMATION_TTL_S,
    ToolError,
    account_for,
    account_for_customer,
    check_policy,
    describe_action,
    run_tool,
    validate_args,
)
from core.tables import SupportConversation, SupportCsat, SupportHandoff, SupportMessage

MAX_MESSAGE_CHARS = 50_000
MAX_COMMENT_CHARS = 2_000
SUMMARY_DELAY_S = 5.0
BOT = "halden-bot"
_YES = re.compile(r"^\s*(yes|y|yeah|yep|sure|confirm|confirmed|ok(ay)?|do it|go ahead|please do)\b[\s.!]*$", re.I)
_NO = re.compile(r"^\s*(no|n|nope|cancel|stop|don'?t|never ?mind)\b[\s.!]*$", re.I)
REPHRASE_TEXT = ("I'm not sure I understood. Could you say it another way? I can answer questions about Halden "
                 "devices and plans, check your orders, plan and verification email, and look up invoices.")
NOT_ENGLISH_TEXT = ("I can only help in English for now. Could you write your question in English? "
                    "Or press **Talk to a human**.")
HANDOFF_TEXT = ("I've passed this to a person on our support team. They can see everything you've written here, so "
                "you won't need to repeat yourself. Stay on this page: their reply will appear here.")


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
    route: str | None
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


def _conversation(row: SupportConversation, csat: SupportCsat | None = None) -> Conversation:
    pending = json.loads(row.pending_action) if row.pending_action else None
    return Conversation(
        id=row.id, customer_sub=row.customer_sub, account_id=row.account_id, status=row.status, intent=row.intent,
        route=row.route, handled_by=row.handled_by, model=row.model, bot_confidence=row.bot_confidence,
        priority=row.priority, assigned_to=row.assigned_to, created_at=row.created_at, updated_at=row.updated_at,
        escalated_at=row.escalated_at, resolved_at=row.resolved_at, pending_action=pending,
        rephrase_asked=row.rephrase_asked, csat=csat.score if csat else None,
        csat_comment=csat.comment if csat else None)


def _message(row: SupportMessage) -> Message:
    return Message(id=row.id, conversation_id=row.conversation_id, role=row.role, author=row.author, text=row.text,
                   created_at=row.created_at, meta=json.loads(row.meta) if row.meta else {})


def _append(conversation_id: int, role: str, author: str, text: str, meta: dict | None = None) -> Message:
    """One INSERT in its own transaction: once this returns, the message survives anything."""
    now = time.time()
    with db.session() as s:
        row = SupportMessage(conversation_id=conversation_id, role=role, author=author[:255], text=text,
                             meta=json.dumps(meta, default=str) if meta else None, created_at=now)
        s.add(row)
        s.exec(update(SupportConversation).where(SupportConversation.id == conversation_id)
               .values(updated_at=now))
        s.flush()
        return _message(row)


def _load(conversation_id: int) -> SupportConversation:
    with db.session() as s:
        row = s.get(SupportConversation, conversation_id)
        if row is None:
            raise ConversationNotFound(f"there is no conversation {conversation_id}")
        return row


def _owned(conversation_id: int, customer: Customer) -> SupportConversation:
    row = _load(conversation_id)
    if row.customer_sub != customer.sub:
        raise ConversationNotFound(f"there is no conversation {conversation_id}")  # same answer as missing
    return row


def _set(conversation_id: int, *, when_status: tuple[str, ...] | None = None, **values) -> bool:
    """A conditional UPDATE of the conversation row; True if it changed."""
    values.setdefault("updated_at", time.time())
    with db.session() as s:
        stmt = update(SupportConversation).where(SupportConversation.id == conversation_id)
        if when_status:
            stmt = stmt.where(SupportConversation.status.in_(when_status))
        return s.exec(stmt.values(**values)).rowcount == 1


# -- customer side -------------------------------------------------------------------------------


def open_conversation(customer: Customer) -> Conversation:
    """The customer's current open conversation, or a new one (a resolved one stays closed)."""
    with db.session() as s:
        row = s.exec(select(SupportConversation).where(SupportConversation.customer_sub == customer.sub,
                                                       SupportConversation.status != "resolved")
                     .order_by(SupportConversation.id.desc())).first()
        if row is not None:
            return _conversation(row)
    return new_conversation(customer)


def new_conversation(customer: Customer) -> Conversation:
    now = time.time()
    with db.session() as s:
        account = account_for(s, customer.email)
        row = SupportConversation(customer_sub=customer.sub, account_id=account.id if account else None,
                                  created_at=now, updated_at=now)
        s.add(row)
        s.flush()
        return _conversation(row)


def latest_conversation(customer: Customer) -> Conversation | None:
    with db.session() as s:
        row = s.exec(select(SupportConversation).where(SupportConversation.customer_sub == customer.sub)
                     .order_by(SupportConversation.id.desc())).first()
    return get_conversation(row.id) if row else None


def get_conversation(conversation_id: int) -> Conversation:
    with db.session() as s:
        row = s.get(SupportConversation, conversation_id)
        if row is None:
            raise ConversationNotFound(f"there is no conversation {conversation_id}")
        return _conversation(row, s.get(SupportCsat, conversation_id))


def customer_conversation(conversation_id: int, customer: Customer) -> Conversation:
    _owned(conversation_id, customer)
    return get_conversation(conversation_id)


def list_messages(conversation_id: int, *, after_id: int = 0, include_notes: bool = False) -> list[Message]:
    """Messages in the order they were written (by id); internal notes only when asked for."""
    with db.session() as s:
        stmt = select(SupportMessage).where(SupportMessage.conversation_id == conversation_id,
                                            SupportMessage.id > after_id)
        if not include_notes:
            stmt = stmt.where(SupportMessage.role != "note")
        return [_message(r) for r in s.exec(stmt.order_by(SupportMessage.id)).all()]


def send_message(conversation_id: int, customer: Customer, text, *, summarize_async: bool = False) -> list[Message]:
    """Store the customer's message first, then let the bot answer (unless a person has the conversation).

    Returns the messages the bot added. Raises EmptyMessage / MessageTooLong (nothing stored) or
    ConversationClosed for a resolved conversation.
    """
    text = clean_text(text)
    row = _owned(conversation_id, customer)
    if row.status == "resolved":
        raise ConversationClosed("this conversation is resolved: start a new one to ask something else")
    stored = _append(conversation_id, "customer", customer.sub, text)
    if row.status in ("waiting", "claimed"):
        return []  # a person has it; the bot stays quiet
    return _bot_turn(row, customer, text, message_id=stored.id, summarize_async=summarize_async)


def _bot_say(conversation_id: int, text: str, meta: dict) -> Message:
    return _append(conversation_id, "bot", BOT, text, meta)


def _bot_turn(row: SupportConversation, customer: Customer, text: str, *, message_id: int,
              summarize_async: bool) -> list[Message]:
    pending = json.loads(row.pending_action) if row.pending_action else None
    if pending:
        # Every message while an action waits is checked for instructions to the bot, not only the one that
        # started it: "change my plan" → injection → "yes" must not change anything.
        if looks_like_injection(text):
            _set(row.id, pending_action=None)
            return _steered(row.id, pending, summarize_async=summarize_async)
        if pending.get("stage") == "confirm" and _YES.match(text):
            return confirm_action(row.id, customer)
        if _NO.match(text):
            return cancel_action(row.id, customer)
        if pending.get("stage") == "need_plan" and requested_plan(text):
            _set(row.id, pending_action=None)
            return _propose(row, customer, "change_plan", {"plan": requested_plan(text)},
                            tuple(pending.get("flags") or ()), None,
                            from_message_id=pending.get("from_message_id", message_id))
        _set(row.id, pending_action=None)  # the customer moved on: the proposal lapses
    from core.support._llm import llm_triage, triage_enabled

    from core.support._followup import follow_up_decision, shown_entities

    c = classify(text)
    decision = follow_up_decision(text, c, shown_entities(_latest_bot_texts(row.id, before=message_id)))
    if decision is None:
        if c.uncertain and c.source == "classifier" and triage_enabled():
            c = llm_triage(text, c, user=customer.sub)
        decision = plan_route(text, rephrased_already=row.rephrase_asked, classification=c)
    meta = {"decision": decision.as_dict()}
    confidence = decision.confidence if row.bot_confidence is None else min(row.bot_confidence, decision.confidence)
    updates = {"route": decision.route, "bot_confidence": confidence}
    if row.intent is None and decision.route not in ("rephrase",):
        updates["intent"] = decision.intent
    _set(row.id, **updates)

    if decision.route == "rephrase":
        _set(row.id, rephrase_asked=True)
        reply = NOT_ENGLISH_TEXT if "not_english" in decision.flags else REPHRASE_TEXT
        return [_bot_say(row.id, reply, meta)]
    _set(row.id, rephrase_asked=False)
    if decision.route == "human":
        return escalate(row.id, decision.reason, decision=decision, summarize_async=summarize_async)
    if decision.route == "faq_answer":
        return [_faq(row, customer, text, meta)]
    return _tool_turn(row, customer, decision, meta, message_id=message_id, summarize_async=summarize_async)


def _latest_bot_texts(conversation_id: int, *, before: int, limit: int = 2) -> list[str]:
    """The bot's latest replies before a message, newest first (what the customer has just been shown)."""
    with db.session() as s:
        return list(s.exec(select(SupportMessage.text).where(SupportMessage.conversation_id == conversation_id,
                                                             SupportMessage.role == "bot",
                                                             SupportMessage.id < before)
                           .order_by(SupportMessage.id.desc()).limit(limit)).all())


def _steered(conversation_id: int, pending: dict, *, summarize_async: bool = False) -> list[Message]:
    """A message of a pending account change tried to instruct the bot: drop the change, flag it, hand off."""
    row = _load(conversation_id)
    decision = RouteDecision(
        route="human", intent=row.intent or "ACCOUNT_ACTION",
        confidence=row.bot_confidence if row.bot_confidence is not None else 1.0,
        reason=f"a message sent while the bot waited to {_action_label(pending)} tried to instruct the bot; "
               "a person reviews it",
        tool=pending.get("tool"), args=dict(pending.get("args") or {}), flags=("injection",))
    return escalate(conversation_id, decision.reason, decision=decision, summarize_async=summarize_async)


def _injection_since(conversation_id: int, from_message_id: int | None) -> bool:
    """Whether any customer message of this action (from the one that started it) instructs the bot."""
    with db.session() as s:
        texts = s.exec(select(SupportMessage.text).where(SupportMessage.conversation_id == conversation_id,
                                                         SupportMessage.role == "customer",
                                                         SupportMessage.id >= int(from_message_id or 0))).all()
    return any(looks_like_injection(t) for t in texts)


def _faq(row: SupportConversation, customer: Customer, text: str, meta: dict) -> Message:
    from core.support._kb import search
    from core.support._llm import faq_answer

    answer = faq_answer(text, search(text), user=customer.sub, customer=row.account_id)
    meta = {**meta, "sources": list(answer.sources), "answer": answer.status, "model": answer.model}
    if answer.error:
        meta["llm_error"] = answer.error[:300]
    if answer.model:
        _set(row.id, model=answer.model[:128])
    return _bot_say(row.id, answer.text, meta)


def _tool_turn(row: SupportConversation, customer: Customer, decision: RouteDecision, meta: dict, *,
               message_id: int, summarize_async: bool) -> list[Message]:
    tool, args = decision.tool, dict(decision.args)
    if tool in MUTATING_TOOLS:
        if tool == "change_plan" and "plan" not in args:
            _set(row.id, pending_action=json.dumps({"tool": tool, "args": {}, "stage": "need_plan",
                                                    "flags": list(decision.flags), "from_message_id": message_id,
                                                    "expires_at": time.time() + CONFIRMATION_TTL_S}))
            return [_bot_say(row.id, "Which plan would you like: **Basic** (free), **Plus** ($4.99), **Pro** ($9.99) "
                                     "or **Business** ($29)?", {**meta, "awaiting": "plan"})]
        return _propose(row, customer, tool, args, decision.flags, meta, from_message_id=message_id)
    try:
        with db.session() as s:
            try:
                account = account_for_customer(s, customer)
                result = run_tool(s, tool, account, args, flags=decision.flags, conversation_id=row.id)
            except ToolError as exc:
                failure = exc  # the audit row is committed with the session; handled below
            else:
                failure = None
    except Exception as exc:  # the database or a bug: the customer still gets a person
        return escalate(row.id, f"tool {tool} failed: {type(exc).__name__}", decision=decision,
                        summarize_async=summarize_async)
    if failure is not None:
        if failure.code == "no_account":
            return escalate(row.id, "no customer account is linked to this sign-in", decision=decision,
                            summarize_async=summarize_async)
        if failure.code == "failed":
            return escalate(row.id, f"tool {tool} failed: {failure}", decision=decision,
                            summarize_async=summarize_async)
        if failure.code == "unverified":
            return [_bot_say(row.id, str(failure), {**meta, "tool": tool, "tool_error": failure.code})]
        return [_bot_say(row.id, f"{failure} Anything else I can check? You can also press **Talk to a human**.",
                         {**meta, "tool": tool, "tool_error": failure.code})]
    return [_bot_say(row.id, result.text, {**meta, "tool": tool, "data": result.data})]


def _propose(row: SupportConversation, customer: Customer, tool: str, args: dict, flags: tuple[str, ...],
             meta: dict | None, *, from_message_id: int) -> list[Message]:
    """Ask the customer to confirm a mutating tool call, after checking it could run at all."""
    meta = meta or {}
    try:
        clean = validate_args(tool, args)
        with db.session() as s:
            account = account_for_customer(s, customer)
            if account is None:
                raise ToolError("no customer account is linked to your sign-in", "no_account")
            decision = check_policy(s, tool, account, clean, confirmed=True, flags=flags)
            question = describe_action(s, tool, account, clean)
    except ToolError as exc:
        if exc.code == "no_account":
            return escalate(row.id, "no customer account is linked to this sign-in")
        return [_bot_say(row.id, f"{exc}", {**meta, "tool": tool, "tool_error": exc.code})]
    if not decision.allowed:
        return [_bot_say(row.id, f"I can't do that: {decision.reason}. Press **Talk to a human** if you need "
                                 "help with it.", {**meta, "tool": tool, "tool_error": "policy"})]
    _set(row.id, pending_action=json.dumps({"tool": tool, "args": clean, "stage": "confirm", "flags": list(flags),
                                            "from_message_id": from_message_id,
                                            "expires_at": time.time() + CONFIRMATION_TTL_S}))
    return [_bot_say(row.id, f"{question} Reply **yes** to confirm or **no** to cancel.",
                     {**meta, "tool": tool, "confirm": True, "args": clean})]


def confirm_action(conversation_id: int, customer: Customer) -> list[Message]:
    """Run the pending mutating tool: the policy is checked again now, against the account as it is now."""
    row = _owned(conversation_id, customer)
    pending = json.loads(row.pending_action) if row.pending_action else None
    if not pending or pending.get("stage") != "confirm" or not _take_pending(conversation_id, row.pending_action):
        return [_bot_say(conversation_id, "There is nothing waiting for your confirmation.", {})]
    if time.time() > float(pending.get("expires_at", 0)):
        return [_bot_say(conversation_id, "That proposal expired; please ask again.", {"tool": pending["tool"]})]
    if "injection" in (pending.get("flags") or ()) or _injection_since(conversation_id, pending.get("from_message_id")):
        return _steered(conversation_id, pending)  # the Confirm button too: every message of the action counts
    _append(conversation_id, "system", customer.sub, f"Confirmed: {_action_label(pending)}.", {"confirmed": pending})
    try:
        with db.session() as s:
            try:
                account = account_for_customer(s, customer)
                result = run_tool(s, pending["tool"], account, pending["args"], confirmed=True,
                                  flags=tuple(pending.get("flags") or ()), conversation_id=conversation_id)
                failure = None
            except ToolError as exc:
                failure = exc
    except Exception as exc:
        return escalate(conversation_id, f"tool {pending['tool']} failed: {type(exc).__name__}")
    if failure is not None:
        return [_bot_say(conversation_id, f"{failure}", {"tool": pending["tool"], "tool_error": failure.code})]
    return [_bot_say(conversation_id, result.text, {"tool": pending["tool"], "data": result.data})]


def _action_label(pending: dict) -> str:
    if pending["tool"] == "change_plan":
        plan = (pending.get("args") or {}).get("plan")
        return f"change the plan to {plan.title()}" if plan else "change the plan"
    if pending["tool"] == "resend_verification":
        return "send a new verification email"
    return pending["tool"]


def _take_pending(conversation_id: int, raw: str) -> bool:
    """Clear exactly this proposal, atomically: of two concurrent confirmations only one gets True."""
    with db.session() as s:
        stmt = (update(SupportConversation)
                .where(SupportConversation.id == conversation_id, SupportConversation.status == "bot",
                       SupportConversation.pending_action == raw)
                .values(pending_action=None, updated_at=time.time()))
        return s.exec(stmt).rowcount == 1


def cancel_action(conversation_id: int, customer: Customer) -> list[Message]:
    _owned(conversation_id, customer)
    _set(conversation_id, pending_action=None)
    return [_bot_say(conversation_id, "OK, I won't change anything. Anything else?", {"cancelled": True})]


def request_human(conversation_id: int, customer: Customer, *, summarize_async: bool = False) -> list[Message]:
    """The always-visible "Talk to a human" button."""
    row = _owned(conversation_id, customer)
    if row.status == "resolved":
        raise ConversationClosed("this conversation is resolved: start a new one")
    return escalate(conversation_id, "the customer pressed Talk to a human", summarize_async=summarize_async)


def close_conversation(conversation_id: int, customer: Customer) -> Conversation:
    """The customer says the bot solved it."""
    _owned(conversation_id, customer)
    now = time.time()
    if _set(conversation_id, when_status=("bot",), status="resolved", resolved_at=now, pending_action=None):
        _append(conversation_id, "system", customer.sub, "The customer marked the conversation solved.")
    return get_conversation(conversation_id)


def rate(conversation_id: int, customer: Customer, score: int, comment: str | None = None) -> Conversation:
    row = _owned(conversation_id, customer)
    if row.status != "resolved":
        raise InvalidRating("you can rate a conversation once it is resolved")
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise InvalidRating("the rating must be a whole number from 1 to 5")
    comment = (comment or "").replace("\x00", "\ufffd").strip()[:MAX_COMMENT_CHARS] or None
    with db.session() as s:
        existing = s.get(SupportCsat, conversation_id)
        if existing is not None:
            raise InvalidRating("this conversation is already rated; thank you")
        s.add(SupportCsat(conversation_id=conversation_id, score=score, comment=comment, created_at=time.time()))
    return get_conversation(conversation_id)


# -- handoff -------------------------------------------------------------------------------------


def _transcript(conversation_id: int) -> list[TranscriptLine]:
    return [TranscriptLine(m.role, m.author, m.text, m.created_at) for m in list_messages(conversation_id)]


def escalate(conversation_id: int, reason: str, *, decision: RouteDecision | None = None,
             summarize_async: bool = False) -> list[Message]:
    """Hand the conversation to a person: queue it with a package, tell the customer. Idempotent."""
    row = _load(conversation_id)
    now = time.time()
    intent = row.intent or (decision.intent if decision else None)
    confidence = row.bot_confidence if row.bot_confidence is not None else (decision.confidence if decision else None)
    flags = decision.flags if decision else ()
    priority = priority_for(intent, confidence, flags)
    if not _set(conversation_id, when_status=("bot",), status="waiting", handled_by="human", escalated_at=now,
                priority=priority, pending_action=None, intent=intent):
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
    message = _append(conversation_id, "system", BOT, HANDOFF_TEXT,
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

    row = _load(conversation_id)
    transcript = format_transcript(_transcript(conversation_id))
    try:
        summary, _model = llm_summary(transcript, user=row.customer_sub, customer=row.account_id)
    except (LLMError, Exception):
        return False
    with db.session() as s:
        s.exec(update(SupportHandoff).where(SupportHandoff.conversation_id == conversation_id)
               .values(summary=summary, summary_source="llm"))
    return True


def get_handoff(conversation_id: int) -> Handoff | None:
    with db.session() as s:
        row = s.exec(select(SupportHandoff).where(SupportHandoff.conversation_id == conversation_id)).first()
    if row is None:
        return None
    return Handoff(conversation_id=row.conversation_id, reason=row.reason, summary=row.summary,
                   summary_source=row.summary_source, entities=json.loads(row.entities or "{}"), intent=row.intent,
                   bot_confidence=row.bot_confidence, suggested_resolution=row.suggested_resolution,
                   priority=row.priority, created_at=row.created_at)


# -- agent side ----------------------------------------------------------------------------------


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
                      .join(SupportHandoff, SupportHandoff.conversation_id == SupportConversation.id, isouter=True)
                      .where(SupportConversation.status.in_(statuses))).all()
        last = {}
        for conv, _ in rows:
            msg = s.exec(select(SupportMessage).where(SupportMessage.conversation_id == conv.id,
                                                      SupportMessage.role == "customer")
                         .order_by(SupportMessage.id.desc())).first()
            last[conv.id] = msg.text if msg else ""
    items = [QueueItem(conversation_id=c.id, customer_sub=c.customer_sub, status=c.status,
                       priority=c.priority or "normal", intent=c.intent, reason=h.reason if h else "",
                       summary=h.summary if h else "", assigned_to=c.assigned_to,
                       escalated_at=c.escalated_at or c.updated_at, waiting_s=now - (c.escalated_at or c.updated_at),
                       last_customer_message=last.get(c.id, "")[:300]) for c, h in rows]
    items.sort(key=lambda i: (i.priority != "high", i.escalated_at))
    return items


def claim(conversation_id: int, agent: str) -> Conversation:
    """Take a waiting conversation; exactly one agent wins a race."""
    if _set(conversation_id, when_status=("waiting",), status="claimed", assigned_to=agent[:255]):
        _append(conversation_id, "system", agent, "A person from our support team joined the conversation.")
        return get_conversation(conversation_id)
    row = _load(conversation_id)
    if row.status == "claimed" and row.assigned_to == agent:
        return get_conversation(conversation_id)
    if row.status == "claimed":
        raise AlreadyClaimed(f"{row.assigned_to} already has this conversation")
    raise NotAllowed(f"conversation {conversation_id} is {row.status}, not waiting for an agent")


def _agent_owns(conversation_id: int, agent: str) -> SupportConversation:
    row = _load(conversation_id)
    if row.status != "claimed" or row.assigned_to != agent:
        raise NotAllowed("claim the conversation before replying or resolving it")
    return row


def agent_reply(conversation_id: int, agent: str, text) -> Message:
    text = clean_text(text, what="reply")
    _agent_owns(conversation_id, agent)
    return _append(conversation_id, "agent", agent, text)


def add_note(conversation_id: int, agent: str, text) -> Message:
    """An internal note: agents see it, the customer never does."""
    text = clean_text(text, what="note")
    _load(conversation_id)
    return _append(conversation_id, "note", agent, text)


def resolve(conversation_id: int, agent: str) -> Conversation:
    _agent_owns(conversation_id, agent)
    if _set(conversation_id, when_status=("claimed",), status="resolved", resolved_at=time.time()):
        _append(conversation_id, "system", agent, "This conversation was marked resolved. How did we do? "
                                                  "Please rate it below.")
    return get_conversation(conversation_id)
