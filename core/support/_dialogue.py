"""The customer dialogue: take a message, then classify → route → answer (FAQ, a tool, a confirmation for an
account change) or hand off, with follow-ups about what the bot just showed. The customer's buttons (confirm,
cancel, talk to a human, solved, rate) live here too.

The customer's message is stored before the bot does anything slow; the rows are in `_records`, the handoff
and everything after it in `_console`.
"""

from __future__ import annotations

import json
import logging
import re
import time

from core import db
from core.support._classifier import classify
from core.support._console import escalate
from core.support._errors import ConversationClosed, InvalidRating
from core.support._records import (
    BOT,
    Conversation,
    Customer,
    Message,
    append_message,
    clean_text,
    customer_texts_since,
    get_conversation,
    latest_bot_texts,
    load_row,
    owned_row,
    saved_id,
    set_fields,
    take_pending,
)
from core.support._router import (
    MUTATING_TOOLS,
    RouteDecision,
    SupportRoute,
    looks_like_injection,
    plan_route,
    requested_plan,
)
from core.support._tools import (
    CONFIRMATION_TTL_S,
    ToolError,
    account_for_customer,
    check_policy,
    describe_action,
    run_tool,
    validate_args,
)
from core.tables import SupportConversation, SupportCsat

_logger = logging.getLogger(__name__)

MAX_COMMENT_CHARS = 2_000
_YES = re.compile(r"^\s*(yes|y|yeah|yep|sure|confirm|confirmed|ok(ay)?|do it|go ahead|please do)\b[\s.!]*$", re.I)
_NO = re.compile(r"^\s*(no|n|nope|cancel|stop|don'?t|never ?mind)\b[\s.!]*$", re.I)
REPHRASE_TEXT = ("I'm not sure I understood. Could you say it another way? I can answer questions about Halden "
                 "devices and plans, check your orders, plan and verification email, and look up invoices.")
NOT_ENGLISH_TEXT = ("I can only help in English for now. Could you write your question in English? "
                    "Or press **Talk to a human**.")


def send_message(conversation_id: int, customer: Customer, text, *, summarize_async: bool = False) -> list[Message]:
    """Store the customer's message first, then let the bot answer (unless a person has the conversation).

    Returns the messages the bot added. Raises EmptyMessage / MessageTooLong (nothing stored) or
    ConversationClosed for a resolved conversation.
    """
    text = clean_text(text)
    row = owned_row(conversation_id, customer)
    if row.status == "resolved":
        raise ConversationClosed("this conversation is resolved: start a new one to ask something else")
    stored = append_message(conversation_id, "customer", customer.sub, text)
    if row.status in ("waiting", "claimed"):
        return []  # a person has it; the bot stays quiet
    return _bot_turn(row, customer, text, message_id=stored.id, summarize_async=summarize_async)


def _bot_say(conversation_id: int, text: str, meta: dict) -> Message:
    return append_message(conversation_id, "bot", BOT, text, meta)


def _bot_turn(row: SupportConversation, customer: Customer, text: str, *, message_id: int,
              summarize_async: bool) -> list[Message]:
    conversation_id = saved_id(row)
    pending = json.loads(row.pending_action) if row.pending_action else None
    if pending:
        # Every message while an action waits is checked for instructions to the bot, not only the one that
        # started it: "change my plan" → injection → "yes" must not change anything.
        if looks_like_injection(text):
            set_fields(conversation_id, pending_action=None)
            return _steered(conversation_id, pending, summarize_async=summarize_async)
        if pending.get("stage") == "confirm" and _YES.match(text):
            return confirm_action(conversation_id, customer)
        if _NO.match(text):
            return cancel_action(conversation_id, customer)
        if pending.get("stage") == "need_plan" and requested_plan(text):
            set_fields(conversation_id, pending_action=None)
            return _propose(row, customer, "change_plan", {"plan": requested_plan(text)},
                            tuple(pending.get("flags") or ()), None,
                            from_message_id=pending.get("from_message_id", message_id))
        set_fields(conversation_id, pending_action=None)  # the customer moved on: the proposal lapses
    from core.support._llm import llm_triage, triage_enabled

    from core.support._followup import follow_up_decision, shown_entities

    c = classify(text)
    decision = follow_up_decision(text, c, shown_entities(latest_bot_texts(conversation_id, before=message_id)))
    if decision is None:
        if c.uncertain and c.source == "classifier" and triage_enabled():
            c = llm_triage(text, c, user=customer.sub)
        decision = plan_route(text, rephrased_already=row.rephrase_asked, classification=c)
    meta = {"decision": decision.as_dict()}
    confidence = decision.confidence if row.bot_confidence is None else min(row.bot_confidence, decision.confidence)
    updates = {"route": str(decision.route), "bot_confidence": confidence}
    if row.intent is None and decision.route != SupportRoute.REPHRASE:
        updates["intent"] = decision.intent
    set_fields(conversation_id, when_status=None, **updates)

    if decision.route == SupportRoute.REPHRASE:
        set_fields(conversation_id, rephrase_asked=True)
        reply = NOT_ENGLISH_TEXT if "not_english" in decision.flags else REPHRASE_TEXT
        return [_bot_say(conversation_id, reply, meta)]
    set_fields(conversation_id, rephrase_asked=False)
    if decision.route == SupportRoute.HUMAN:
        return escalate(conversation_id, decision.reason, decision=decision, summarize_async=summarize_async)
    if decision.route == SupportRoute.FAQ_ANSWER:
        return [_faq(row, customer, text, meta)]
    return _tool_turn(row, customer, decision, meta, message_id=message_id, summarize_async=summarize_async)


def _steered(conversation_id: int, pending: dict, *, summarize_async: bool = False) -> list[Message]:
    """A message of a pending account change tried to instruct the bot: drop the change, flag it, hand off."""
    row = load_row(conversation_id)
    decision = RouteDecision(
        route=SupportRoute.HUMAN, intent=row.intent or "ACCOUNT_ACTION",
        confidence=row.bot_confidence if row.bot_confidence is not None else 1.0,
        reason=f"a message sent while the bot waited to {_action_label(pending)} tried to instruct the bot; "
               "a person reviews it",
        tool=pending.get("tool"), args=dict(pending.get("args") or {}), flags=("injection",))
    return escalate(conversation_id, decision.reason, decision=decision, summarize_async=summarize_async)


def _injection_since(conversation_id: int, from_message_id: int | None) -> bool:
    """Whether any customer message of this action (from the one that started it) instructs the bot."""
    return any(looks_like_injection(t) for t in customer_texts_since(conversation_id, from_message_id))


def _faq(row: SupportConversation, customer: Customer, text: str, meta: dict) -> Message:
    from core.support._kb import search
    from core.support._llm import faq_answer

    conversation_id = saved_id(row)
    answer = faq_answer(text, search(text), user=customer.sub, customer=row.account_id)
    meta = {**meta, "sources": list(answer.sources), "answer": answer.status, "model": answer.model}
    if answer.error:
        meta["llm_error"] = answer.error[:300]
    if answer.model:
        set_fields(conversation_id, model=answer.model[:128])
    return _bot_say(conversation_id, answer.text, meta)


def _tool_turn(row: SupportConversation, customer: Customer, decision: RouteDecision, meta: dict, *,
               message_id: int, summarize_async: bool) -> list[Message]:
    conversation_id = saved_id(row)
    tool, args = decision.tool, dict(decision.args)
    if tool is None:  # plan_route and follow_up_decision always name the tool of a tool route; a person takes it
        return escalate(conversation_id, f"the {decision.route} route named no tool", decision=decision,
                        summarize_async=summarize_async)
    if tool in MUTATING_TOOLS:
        if tool == "change_plan" and "plan" not in args:
            set_fields(conversation_id, pending_action=json.dumps({
                "tool": tool, "args": {}, "stage": "need_plan", "flags": list(decision.flags),
                "from_message_id": message_id, "expires_at": time.time() + CONFIRMATION_TTL_S}))
            return [_bot_say(conversation_id, "Which plan would you like: **Basic** (free), **Plus** ($4.99), "
                                              "**Pro** ($9.99) or **Business** ($29)?", {**meta, "awaiting": "plan"})]
        return _propose(row, customer, tool, args, decision.flags, meta, from_message_id=message_id)
    failure: ToolError | None = None
    try:
        with db.session() as s:
            try:
                account = account_for_customer(s, customer)
                result = run_tool(s, tool, account, args, flags=decision.flags, conversation_id=conversation_id)
            except ToolError as exc:
                failure = exc  # the audit row is committed with the session; handled below
    except Exception as exc:  # the database or a bug: the customer still gets a person
        _logger.exception("support tool %s failed in conversation %s", tool, conversation_id)
        return escalate(conversation_id, f"tool {tool} failed: {type(exc).__name__}", decision=decision,
                        summarize_async=summarize_async)
    if failure is not None:
        if failure.code == "no_account":
            return escalate(conversation_id, "no customer account is linked to this sign-in", decision=decision,
                            summarize_async=summarize_async)
        if failure.code == "failed":
            return escalate(conversation_id, f"tool {tool} failed: {failure}", decision=decision,
                            summarize_async=summarize_async)
        if failure.code == "unverified":
            return [_bot_say(conversation_id, str(failure), {**meta, "tool": tool, "tool_error": failure.code})]
        return [_bot_say(conversation_id,
                         f"{failure} Anything else I can check? You can also press **Talk to a human**.",
                         {**meta, "tool": tool, "tool_error": failure.code})]
    return [_bot_say(conversation_id, result.text, {**meta, "tool": tool, "data": result.data})]


def _propose(row: SupportConversation, customer: Customer, tool: str, args: dict, flags: tuple[str, ...],
             meta: dict | None, *, from_message_id: int) -> list[Message]:
    """Ask the customer to confirm a mutating tool call, after checking it could run at all."""
    conversation_id = saved_id(row)
    meta = meta or {}
    try:
        clean = validate_args(tool, args)
        with db.session() as s:
            account = account_for_customer(s, customer)
            if account is None:
                raise ToolError("no customer account is linked to your sign-in", "no_account")
            decision = check_policy(s, tool, account, clean, confirmed=True, flags=flags)
            question = describe_action(s, tool, account, clean) if decision.allowed else ""  # refused: no question
    except ToolError as exc:
        if exc.code == "no_account":
            return escalate(conversation_id, "no customer account is linked to this sign-in")
        return [_bot_say(conversation_id, f"{exc}", {**meta, "tool": tool, "tool_error": exc.code})]
    if not decision.allowed:
        return [_bot_say(conversation_id, f"I can't do that: {decision.reason}. Press **Talk to a human** if you "
                                          "need help with it.", {**meta, "tool": tool, "tool_error": "policy"})]
    set_fields(conversation_id, pending_action=json.dumps({"tool": tool, "args": clean, "stage": "confirm",
                                                           "flags": list(flags), "from_message_id": from_message_id,
                                                           "expires_at": time.time() + CONFIRMATION_TTL_S}))
    return [_bot_say(conversation_id, f"{question} Reply **yes** to confirm or **no** to cancel.",
                     {**meta, "tool": tool, "confirm": True, "args": clean})]


def confirm_action(conversation_id: int, customer: Customer) -> list[Message]:
    """Run the pending mutating tool: the policy is checked again now, against the account as it is now."""
    row = owned_row(conversation_id, customer)
    raw = row.pending_action
    pending = json.loads(raw) if raw else None
    if raw is None or not pending or pending.get("stage") != "confirm" or not take_pending(conversation_id, raw):
        return [_bot_say(conversation_id, "There is nothing waiting for your confirmation.", {})]
    if time.time() > float(pending.get("expires_at", 0)):
        return [_bot_say(conversation_id, "That proposal expired; please ask again.", {"tool": pending["tool"]})]
    if "injection" in (pending.get("flags") or ()) or _injection_since(conversation_id, pending.get("from_message_id")):
        return _steered(conversation_id, pending)  # the Confirm button too: every message of the action counts
    append_message(conversation_id, "system", customer.sub, f"Confirmed: {_action_label(pending)}.",
                   {"confirmed": pending})
    try:
        with db.session() as s:
            try:
                account = account_for_customer(s, customer)
                result = run_tool(s, pending["tool"], account, pending["args"], confirmed=True,
                                  flags=tuple(pending.get("flags") or ()), conversation_id=conversation_id)
                failure = None
            except ToolError as exc:
                failure = exc
    except Exception as exc:  # the database or a bug: the customer still gets a person
        _logger.exception("support tool %s failed in conversation %s", pending["tool"], conversation_id)
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


def cancel_action(conversation_id: int, customer: Customer) -> list[Message]:
    owned_row(conversation_id, customer)
    set_fields(conversation_id, pending_action=None)
    return [_bot_say(conversation_id, "OK, I won't change anything. Anything else?", {"cancelled": True})]


def request_human(conversation_id: int, customer: Customer, *, summarize_async: bool = False) -> list[Message]:
    """The always-visible "Talk to a human" button."""
    row = owned_row(conversation_id, customer)
    if row.status == "resolved":
        raise ConversationClosed("this conversation is resolved: start a new one")
    return escalate(conversation_id, "the customer pressed Talk to a human", summarize_async=summarize_async)


def close_conversation(conversation_id: int, customer: Customer) -> Conversation:
    """The customer says the bot solved it."""
    owned_row(conversation_id, customer)
    now = time.time()
    if set_fields(conversation_id, when_status=("bot",), status="resolved", resolved_at=now, pending_action=None):
        append_message(conversation_id, "system", customer.sub, "The customer marked the conversation solved.")
    return get_conversation(conversation_id)


def rate(conversation_id: int, customer: Customer, score: int, comment: str | None = None) -> Conversation:
    row = owned_row(conversation_id, customer)
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
