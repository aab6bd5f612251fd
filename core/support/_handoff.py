"""The handoff package: everything an agent needs so the customer never repeats themselves."""

from __future__ import annotations

from dataclasses import dataclass

from core.support._router import extract_entities

HIGH_PRIORITY_BELOW = 0.3


@dataclass(frozen=True)
class TranscriptLine:
    role: str
    author: str
    text: str
    created_at: float


_TOOL_DONE = {  # what the customer has already been shown, by the bot's last tool
    "order_status": "showed the order status",
    "lookup_account": "showed the account's plan and status",
    "list_invoices": "listed the latest invoices",
    "get_invoice": "showed the invoice",
    "resend_verification": "sent a new verification email",
    "change_plan": "changed the plan after the customer confirmed",
}


def priority_for(intent: str | None, confidence: float | None, flags: tuple[str, ...] = ()) -> str:
    """High for complaints and for anything the bot was under 30% sure about."""
    if intent == "COMPLAINT" or (confidence is not None and confidence < HIGH_PRIORITY_BELOW):
        return "high"
    return "normal"


def format_transcript(lines: list[TranscriptLine], max_chars_per_message: int = 600) -> str:
    out = []
    for line in lines:
        if line.role == "note":
            continue
        text = line.text if len(line.text) <= max_chars_per_message else line.text[:max_chars_per_message] + " […]"
        out.append(f"{line.role}: {text}")
    return "\n".join(out)


def entities_for(lines: list[TranscriptLine], account_id: str | None) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {"accounts": [], "orders": [], "invoices": []}
    for line in lines:
        if line.role != "customer":
            continue
        for key, values in extract_entities(line.text[:5000]).items():
            found[key].extend(v for v in values if v not in found[key])
    if account_id and account_id not in found["accounts"]:
        found["accounts"].insert(0, account_id)
    return found


def extractive_summary(lines: list[TranscriptLine], reason: str) -> str:
    """A summary without a model: the first and latest things the customer said, and why it was handed off."""
    said = [line.text.strip() for line in lines if line.role == "customer" and line.text.strip()]

    def clip(text: str, n: int = 200) -> str:
        text = " ".join(text.split())
        return text if len(text) <= n else text[:n].rstrip() + "…"

    if not said:
        return f"The customer asked for a person before writing anything. Reason: {reason}."
    summary = f"Customer wrote: “{clip(said[0])}”"
    if len(said) > 1:
        summary += f" Latest: “{clip(said[-1])}”"
    return f"{summary} Handed off because {reason}."


def suggest_resolution(intent: str | None, reason: str, flags: tuple[str, ...], entities: dict[str, list[str]],
                       top_article: tuple[str, str] | None, last_tool: str | None = None) -> str:
    """A concrete first step for the agent, from the intent, the escalation reason and the ids mentioned."""
    orders = ", ".join(entities.get("orders") or []) or "the customer's recent orders"
    invoices = ", ".join(entities.get("invoices") or []) or "the latest invoices"
    if "refund_or_dispute" in flags:
        step = (f"Check {invoices} for a duplicate or post-cancellation charge; if confirmed, refund it from the "
                "billing console and tell the customer it takes 5–7 business days.")
    elif intent == "COMPLAINT":
        step = (f"Acknowledge the problem and apologise; look at {orders}; offer a concrete remedy (warranty "
                "replacement, outage credit) and a time when they will hear back.")
    elif "injection" in flags:
        step = "The message tried to instruct the bot; verify the request with the customer before changing anything."
    elif reason.startswith("tool"):
        step = f"The bot's tool call failed ({reason}); run the look-up yourself and answer the customer."
    elif last_tool in _TOOL_DONE:
        step = f"The bot already {_TOOL_DONE[last_tool]}; ask what is still missing."
        if last_tool == "order_status":
            step += f" If {orders} is late or missing, open a trace with the carrier."
    elif intent == "BILLING":
        step = f"Review {invoices} with the customer."
    elif intent == "ACCOUNT_ACTION":
        step = f"Check the account and {orders}; make the change the customer asked for if policy allows."
    elif "unclear" in reason or intent in (None, "UNKNOWN"):
        step = "The bot could not tell what the customer needs: ask one clarifying question."
    else:
        step = "Answer the customer's question."
    if top_article:
        step += f" Relevant article: [{top_article[0]}]({top_article[1]})."
    return step
