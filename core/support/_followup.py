"""Follow-ups that name what the bot just showed: "Where is my order?" lists ORD-50013, then "What is the
status of ORD-50013?" is an order look-up however unsure the classifier is about the wording. Pure, like the
router it runs before; the conversation passes in the ids its latest bot reply showed.
"""

from __future__ import annotations

import re

from core.support._classifier import Classification
from core.support._router import (
    RouteDecision,
    SupportRoute,
    asks_for_human,
    extract_entities,
    looks_like_injection,
)

# Refunds, disputes and complaints about a shown order still go to a person through the router.
_NOT_A_LOOKUP = re.compile(r"\b(refund|money back|chargeback|dispute|cancel|return|broken|damaged|wrong|"
                           r"complain|terrible|awful|worst)\b", re.I)


def shown_entities(bot_texts: list[str]) -> dict[str, list[str]]:
    """Order and invoice ids in the bot's latest replies (newest first), without duplicates."""
    shown: dict[str, list[str]] = {"orders": [], "invoices": []}
    for text in bot_texts:
        found = extract_entities(text)
        for kind in shown:
            shown[kind] += [x for x in found[kind] if x not in shown[kind]]
    return shown


def follow_up_decision(text: str, c: Classification, shown: dict[str, list[str]] | None) -> RouteDecision | None:
    """A read-only look-up of an order or invoice the message names and the bot just showed, else None."""
    if not shown or asks_for_human(text) or looks_like_injection(text) or _NOT_A_LOOKUP.search(text):
        return None
    named = extract_entities(text)
    order = next((o for o in named["orders"] if o in shown.get("orders", ())), None)
    invoice = next((i for i in named["invoices"] if i in shown.get("invoices", ())), None)
    if order:
        route, intent, tool, args = SupportRoute.ACCOUNT_TOOL, "ACCOUNT_ACTION", "order_status", {"order_id": order}
    elif invoice:
        route, intent, tool, args = SupportRoute.BILLING_TOOL, "BILLING", "get_invoice", {"invoice_id": invoice}
    else:
        return None
    return RouteDecision(route=route, intent=intent, confidence=max(c.confidence, 0.9), gap=c.gap,
                         reason=f"a follow-up about {next(iter(args.values()))}, which the bot just showed",
                         tool=tool, args=args, classification=c)
