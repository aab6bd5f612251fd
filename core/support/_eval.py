"""Support's eval hooks: the `support.classify` and `support.route` targets and the router's branches, registered
with core.evals (which imports no feature), and turning an escalated or low-rated conversation into an eval case."""

from __future__ import annotations

import time

from core.evals import Agent, CaseSource, Target, TargetOutput, add_eval_case, register_branches, register_target
from core.support._errors import NotAllowed
from core.support._records import get_conversation, list_messages
from core.support._router import ROUTES, SupportBranch, SupportRoute

EVAL_SUITES = ("support-routes", "support-intents")
EVAL_SOURCE = CaseSource.SUPPORT_ESCALATION


class SupportClassify(Target):
    """The intent classifier alone (no LLM)."""

    def model_label(self, options):
        return "intent-classifier"

    def run(self, case, options):
        from core.support import classify

        started = time.perf_counter()
        result = classify(case.input)
        latency = (time.perf_counter() - started) * 1000
        output = {"label": result.label, "confidence": round(float(result.confidence), 4)}
        return TargetOutput(output=output, text=result.label, latency_ms=latency)


class SupportRouteTarget(Target):
    """The router's decision for a first message (no LLM unless the router consults one)."""

    def model_label(self, options):
        return "intent-classifier+router"

    def run(self, case, options):
        from core.support import plan_route

        started = time.perf_counter()
        decision = plan_route(case.input, rephrased_already=bool(case.fields.get("rephrased_already")))
        latency = (time.perf_counter() - started) * 1000
        output = {"route": str(decision.route), "intent": decision.intent,
                  "confidence": round(float(decision.confidence), 4), "reason": decision.reason,
                  "branch": str(decision.branch) if getattr(decision, "branch", None) else None}
        return TargetOutput(output=output, text=str(decision.route), latency_ms=latency)


register_target("support.classify", SupportClassify())
register_target("support.route", SupportRouteTarget())
register_branches(Agent.SUPPORT, SupportBranch)


def eval_case_draft(conversation_id: int) -> dict:
    """What the "Add to eval dataset" form starts from: the first customer message and the observed outcome."""
    conv = get_conversation(conversation_id)
    said = [m.text for m in list_messages(conversation_id) if m.role == "customer"]
    return {"input": said[0] if said else "", "expected": {"intent": conv.intent or "UNKNOWN",
                                                           "route": str(conv.route or SupportRoute.HUMAN)},
            "eligible": conv.escalated_at is not None or (conv.csat is not None and conv.csat < 3)}


def add_conversation_to_eval(conversation_id: int, *, suite: str, input_text: str, expected: dict, notes: str,
                             created_by: str) -> int:
    """Add one case through `core.evals.add_eval_case`; only escalated or low-CSAT conversations qualify."""
    if suite not in EVAL_SUITES:
        raise NotAllowed(f"suite must be one of {EVAL_SUITES}")
    draft = eval_case_draft(conversation_id)
    if not draft["eligible"]:
        raise NotAllowed("only escalated conversations or ones rated below 3 can become eval cases")
    if not input_text or not input_text.strip():
        raise NotAllowed("the case needs an input message")
    route = expected.get("route")
    if route is not None and route not in ROUTES:
        raise NotAllowed(f"expected route must be one of {', '.join(ROUTES)}")
    expected = {**expected, "route": str(SupportRoute(route))} if route is not None else dict(expected)
    return add_eval_case(suite=suite, input=input_text[:5000], expected=expected, notes=notes[:2000],
                         source=EVAL_SOURCE, source_ref=f"support_conversation:{conversation_id}",
                         created_by=created_by)
