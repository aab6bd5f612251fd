"""Routing: from one customer message to a route, without side effects (the eval pipeline calls this).

Order of decisions: an explicit request for a person; complaints straight to a human; unclear messages get one
request to rephrase, then a human; FAQ → knowledge base; account actions and billing → tools, except refunds
and disputes, which always go to a human. Text that tries to steer the bot is flagged, and a flagged message
never leads to a mutating tool.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from core.support._classifier import Classification, classify
from core.support._kb import search

MUTATING_TOOLS = frozenset({"change_plan", "resend_verification"})
PLAN_IDS = ("basic", "plus", "pro", "business")
# Unsure only whether a question is about Halden at all (FAQ vs UNKNOWN): a help-centre article this close to it says
# it is. Read off the calibration and check sets (other writers' messages): the most unsure FAQ questions answered
# (8 of 10) while at most a tenth of the unsure off-topic ones get an answer (1 of 12); 0.5 answered 6 of 10.
ARTICLE_MATCH = 0.45
COMPLAINT_FLOOR = 0.3  # a complaint (or a refund or dispute) this likely goes to a person even when the classifier
# is unsure: asking to rephrase would only delay the person who handles it anyway

_ORDER_ID = re.compile(r"\bORD-?(\d{5})\b", re.I)
_BARE_ORDER = re.compile(r"\border\s*(?:no\.?|number|#)?\s*(\d{5})\b", re.I)
_INVOICE_ID = re.compile(r"\bINV-?(\d{4})-?(\d{4})\b", re.I)
_ACCOUNT_ID = re.compile(r"\bACC-?(\d{4,6})\b", re.I)

_HUMAN = re.compile(
    r"\b(talk|speak|chat|connect|transfer|put)\b.{0,25}\b(human|person|agent|someone|representative|rep|"
    r"manager|supervisor|real)\b|\b(human|live) (agent|support|person)\b|^\s*(agent|human|operator)\s*[.!?]*\s*$",
    re.I)
_REFUND_OR_DISPUTE = re.compile(
    r"refund|money back|charge ?back|dispute|charged (me )?twice|double[- ]charged|duplicate (charge|payment)|"
    r"overcharg|reverse the (charge|payment)|paid twice|credit (on|to) my (bill|account)|"
    r"(charge|payment)s? (i|that i) (don'?t|do not) recogni[sz]e|charged after i cancel", re.I)
_INJECTION = re.compile(
    r"ignore (all |any |your |the |previous |prior |above )*(rules|instructions|policy|policies|prompt|guidelines)|"
    r"disregard (all |your |the |previous )*(rules|instructions|policy)|system prompt|developer mode|jailbreak|"
    r"you are now\b|pretend (to be|you are)|act as (an? )?(admin|administrator|agent|system)|admin mode|"
    r"override (the |your )?(policy|rules|safety)|</?(system|assistant|data)>|\[/?INST\]|"
    r"without (asking|confirmation|confirming)|do not ask (me )?(for )?confirm", re.I)

_VERIFY = re.compile(r"verif|activation (email|link)|confirmation email|confirm(ation)? (link|email)|"
                     r"account confirmation", re.I)
_PLAN_CHANGE = re.compile(r"\b(upgrade|downgrade|switch|change|move|put me|activate|cheapest|plan|tier)\b", re.I)
_PLAN_VERB = re.compile(r"\b(upgrade|downgrade|switch|change|move|put me on|activate)\b", re.I)
_ORDER_WORDS = re.compile(r"\border|package|parcel|deliver|ship|track|arriv|my stuff|ORD-", re.I)


class SupportRoute(StrEnum):
    """Where `plan_route` sends a message. The values are what `support_conversations.route`, the decision in a
    message's meta and the `support-routes` eval cases hold, so they never change."""

    FAQ_ANSWER = "faq_answer"  # a grounded answer from the help centre
    ACCOUNT_TOOL = "account_tool"  # an account look-up or (confirmed) change
    BILLING_TOOL = "billing_tool"  # an invoice look-up
    HUMAN = "human"  # handed off to a person
    REPHRASE = "rephrase"  # unclear: ask the customer to say it another way


ROUTES: tuple[SupportRoute, ...] = tuple(SupportRoute)


class SupportBranch(StrEnum):
    """Every decision path `plan_route` can take (route → tool → confirmation → handoff). Branch coverage
    (`keel eval coverage`) lists these, so a new path added here shows up uncovered until an eval case takes it."""

    ASKED_FOR_HUMAN = "asked_for_human"  # the customer asked for a person
    COMPLAINT = "complaint_handoff"  # complaints go to a person
    REPHRASE = "rephrase"  # unclear: one request to rephrase
    UNCLEAR_HANDOFF = "unclear_handoff"  # still unclear after rephrasing: a person
    FAQ = "faq_answer"  # answered from the help centre
    FAQ_BY_ARTICLE = "faq_by_article"  # unsure it is about Halden, but a help-centre article matches it: answered
    REFUND_OR_DISPUTE = "refund_or_dispute_handoff"  # billing team
    BILLING_LOOKUP = "billing_lookup"  # read-only billing tool
    ACCOUNT_LOOKUP = "account_lookup"  # read-only account tool (account, order status)
    ACCOUNT_CHANGE = "account_change_confirm"  # a mutating tool, proposed for the customer to confirm
    STEERED_HANDOFF = "steered_handoff"  # a message tried to steer the bot into changing the account


@dataclass(frozen=True)
class RouteDecision:
    """Where a message goes and why; `tool`/`args` name the tool call for the tool routes."""

    route: SupportRoute  # a plain string with a route's value is accepted and turned into the member
    intent: str
    confidence: float
    reason: str
    gap: float = 0.0
    tool: str | None = None
    args: dict = field(default_factory=dict)
    flags: tuple[str, ...] = ()  # "injection", "asked_for_human", "refund_or_dispute", "not_english", ...
    classification: Classification | None = None
    branch: SupportBranch | None = None  # set by plan_route; derived for decisions built elsewhere

    def __post_init__(self):
        if not isinstance(self.route, SupportRoute):
            if self.route not in ROUTES:
                raise ValueError(f"route must be one of {', '.join(ROUTES)}, not {self.route!r}")
            object.__setattr__(self, "route", SupportRoute(self.route))
        if self.branch is None:
            object.__setattr__(self, "branch", _infer_branch(self))

    @property
    def mutating(self) -> bool:
        return self.tool in MUTATING_TOOLS

    def as_dict(self) -> dict:
        return {"route": str(self.route), "intent": self.intent, "confidence": round(self.confidence, 4),
                "gap": round(self.gap, 4), "reason": self.reason, "tool": self.tool, "args": self.args,
                "flags": list(self.flags), "branch": str(self.branch)}


def _infer_branch(d: RouteDecision) -> SupportBranch:
    """The branch of a decision not made by `plan_route` (e.g. a hand-off while an account change waited)."""
    if d.route == SupportRoute.HUMAN:
        if "injection" in d.flags:
            return SupportBranch.STEERED_HANDOFF
        if "refund_or_dispute" in d.flags:
            return SupportBranch.REFUND_OR_DISPUTE
        if "asked_for_human" in d.flags:
            return SupportBranch.ASKED_FOR_HUMAN
        return SupportBranch.COMPLAINT if d.intent == "COMPLAINT" else SupportBranch.UNCLEAR_HANDOFF
    if d.route == SupportRoute.REPHRASE:
        return SupportBranch.REPHRASE
    if d.route == SupportRoute.FAQ_ANSWER:
        return SupportBranch.FAQ
    if d.route == SupportRoute.BILLING_TOOL:
        return SupportBranch.BILLING_LOOKUP
    return SupportBranch.ACCOUNT_CHANGE if d.tool in MUTATING_TOOLS else SupportBranch.ACCOUNT_LOOKUP


def extract_entities(text: str) -> dict[str, list[str]]:
    """Account, order and invoice ids mentioned in text, normalised (ORD-50012, INV-2026-0042, ACC-1001)."""
    orders = [f"ORD-{m}" for m in _ORDER_ID.findall(text)] + [f"ORD-{m}" for m in _BARE_ORDER.findall(text)]
    invoices = [f"INV-{a}-{b}" for a, b in _INVOICE_ID.findall(text)]
    accounts = [f"ACC-{m}" for m in _ACCOUNT_ID.findall(text)]
    unique = lambda items: list(dict.fromkeys(items))
    return {"accounts": unique(accounts), "orders": unique(orders), "invoices": unique(invoices)}


def looks_like_injection(text: str) -> bool:
    return bool(_INJECTION.search(text))


def asks_for_human(text: str) -> bool:
    return bool(_HUMAN.search(text[:2000]))


def requested_plan(text: str) -> str | None:
    lowered = text.lower()
    if "cheapest" in lowered or "free plan" in lowered:
        return "basic"
    named = [p for p in PLAN_IDS if re.search(rf"\b{p}\b", lowered)]
    if not named:
        return None
    # "from basic to plus" / "move from Pro down to Plus": the plan after "to" is the target.
    after_to = re.search(r"\bto (the )?(" + "|".join(PLAN_IDS) + r")\b", lowered)
    return after_to.group(2) if after_to else named[-1]


def _account_tool(text: str) -> tuple[str, dict]:
    entities = extract_entities(text)
    if _VERIFY.search(text):
        return "resend_verification", {}
    plan = requested_plan(text)
    if _PLAN_VERB.search(text) and (plan or re.search(r"\b(plan|tier|subscription)\b", text, re.I)):
        return "change_plan", ({"plan": plan} if plan else {})
    if plan and _PLAN_CHANGE.search(text) and not re.search(r"\bwhat|which\b", text, re.I):
        return "change_plan", {"plan": plan}
    if entities["orders"] or _ORDER_WORDS.search(text):
        return "order_status", ({"order_id": entities["orders"][0]} if entities["orders"] else {})
    return "lookup_account", {}


def _billing_tool(text: str) -> tuple[str, dict]:
    invoices = extract_entities(text)["invoices"]
    return ("get_invoice", {"invoice_id": invoices[0]}) if invoices else ("list_invoices", {})


def _best_article_score(text: str) -> float:
    best = search(text, k=1)
    return best[0].score if best else 0.0


def _why_unclear(c: Classification) -> str:
    if c.note in ("empty", "no words"):
        return f"the message has {'no text' if c.note == 'empty' else 'no words'}"
    if c.note == "not English":
        return "the message does not look like English"
    if c.label == "UNKNOWN" and not c.uncertain:
        return "the message is not about Halden support"
    if c.low_confidence:
        return f"low confidence {c.confidence:.2f} for {c.label}"
    return f"ambiguous: {c.label} vs {c.second} (gap {c.gap:.2f})"


def plan_route(text: str, *, rephrased_already: bool = False,
               classification: Classification | None = None) -> RouteDecision:
    """The routing decision for one message. Pure: classification (given or computed) plus rules; no SQL, no LLM."""
    c = classification or classify(text)
    flags = []
    if looks_like_injection(text):
        flags.append("injection")
    if c.note == "not English":
        flags.append("not_english")

    def decide(route: SupportRoute, reason: str, tool: str | None = None, args: dict | None = None,
               branch: SupportBranch | None = None, intent: str | None = None) -> RouteDecision:
        return RouteDecision(route=route, intent=intent or c.label, confidence=c.confidence, gap=c.gap, reason=reason,
                             tool=tool, args=args or {}, flags=tuple(flags), classification=c, branch=branch)

    if asks_for_human(text):
        flags.append("asked_for_human")
        return decide(SupportRoute.HUMAN, "the customer asked for a person", branch=SupportBranch.ASKED_FOR_HUMAN)
    if c.label == "COMPLAINT" and c.confidence >= COMPLAINT_FLOOR:
        return decide(SupportRoute.HUMAN, "complaint: a person should handle it", branch=SupportBranch.COMPLAINT)
    if c.label == "BILLING" and c.confidence >= COMPLAINT_FLOOR and _REFUND_OR_DISPUTE.search(text):
        flags.append("refund_or_dispute")
        return decide(SupportRoute.HUMAN, "refunds and disputes are handled by the billing team",
                      branch=SupportBranch.REFUND_OR_DISPUTE)
    if "injection" in flags and c.label == "ACCOUNT_ACTION":  # before the confidence check: however unsure the
        tool, args = _account_tool(text)  # classifier is, an attempt to steer an account change goes to a person
        if tool in MUTATING_TOOLS:
            return decide(SupportRoute.HUMAN,
                          "the message tries to steer the bot into changing the account; a person reviews it",
                          tool, args, branch=SupportBranch.STEERED_HANDOFF)
    if c.uncertain and {c.label, c.second} == {"FAQ", "UNKNOWN"} and not flags:
        score = _best_article_score(text)
        if score >= ARTICLE_MATCH:
            return decide(SupportRoute.FAQ_ANSWER, f"unsure it is about Halden ({c.label} {c.confidence:.2f} vs "
                          f"{c.second}), but a help-centre article matches it ({score:.2f})",
                          branch=SupportBranch.FAQ_BY_ARTICLE, intent="FAQ")  # answered as one: CSAT counts it so
    if c.uncertain or c.label == "UNKNOWN" or "not_english" in flags:
        if rephrased_already:
            return decide(SupportRoute.HUMAN, f"still unclear after asking to rephrase ({_why_unclear(c)})",
                          branch=SupportBranch.UNCLEAR_HANDOFF)
        return decide(SupportRoute.REPHRASE, _why_unclear(c), branch=SupportBranch.REPHRASE)
    if c.label == "FAQ":
        return decide(SupportRoute.FAQ_ANSWER, "a question the help centre answers", branch=SupportBranch.FAQ)
    if c.label == "BILLING":
        if _REFUND_OR_DISPUTE.search(text):
            flags.append("refund_or_dispute")
            return decide(SupportRoute.HUMAN, "refunds and disputes are handled by the billing team",
                          branch=SupportBranch.REFUND_OR_DISPUTE)
        tool, args = _billing_tool(text)
        return decide(SupportRoute.BILLING_TOOL, "billing look-up", tool, args, branch=SupportBranch.BILLING_LOOKUP)
    # ACCOUNT_ACTION
    tool, args = _account_tool(text)
    branch = SupportBranch.ACCOUNT_CHANGE if tool in MUTATING_TOOLS else SupportBranch.ACCOUNT_LOOKUP
    return decide(SupportRoute.ACCOUNT_TOOL, "account action", tool, args, branch=branch)
