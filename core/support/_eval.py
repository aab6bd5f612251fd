"""Turn an escalated or low-rated conversation into an eval case for the eval pipeline (core.ops)."""

from __future__ import annotations

from core.support._conversations import get_conversation, list_messages
from core.support._errors import NotAllowed
from core.support._router import ROUTES

EVAL_SUITES = ("support-routes", "support-intents")
EVAL_SOURCE = "support_escalation"


def eval_case_draft(conversation_id: int) -> dict:
    """What the "Add to eval dataset" form starts from: the first customer message and the observed outcome."""
    conv = get_conversation(conversation_id)
    said = [m.text for m in list_messages(conversation_id) if m.role == "customer"]
    return {"input": said[0] if said else "", "expected": {"intent": conv.intent or "UNKNOWN",
                                                           "route": conv.route or "human"},
            "eligible": conv.escalated_at is not None or (conv.csat is not None and conv.csat < 3)}


def add_conversation_to_eval(conversation_id: int, *, suite: str, input_text: str, expected: dict, notes: str,
                             created_by: str) -> int:
    """Add one case through `core.ops.add_eval_case`; only escalated or low-CSAT conversations qualify."""
    from core.ops import add_eval_case  # the eval pipeline's API (owned by core.ops)

    if suite not in EVAL_SUITES:
        raise NotAllowed(f"suite must be one of {EVAL_SUITES}")
    draft = eval_case_draft(conversation_id)
    if not draft["eligible"]:
        raise NotAllowed("only escalated conversations or ones rated below 3 can become eval cases")
    if not input_text or not input_text.strip():
        raise NotAllowed("the case needs an input message")
    route = expected.get("route")
    if route is not None and route not in ROUTES:
        raise NotAllowed(f"expected route must be one of {ROUTES}")
    return add_eval_case(suite=suite, input=input_text[:5000], expected=dict(expected), notes=notes[:2000],
                         source=EVAL_SOURCE, source_ref=f"support_conversation:{conversation_id}",
                         created_by=created_by)
