"""'Add to eval dataset' from support: escalated or low-CSAT conversations become eval cases in core.evals."""

from __future__ import annotations

import json

import pytest

from core import config
from core.llm import set_gateway
from core.evals import list_eval_cases
from core.support import (
    Customer,
    NotAllowed,
    add_conversation_to_eval,
    close_conversation,
    eval_case_draft,
    open_conversation,
    rate,
    request_human,
    seed_demo_company,
    send_message,
)
from tests.support.fault_server import closed_port

HANA = Customer("hana.hr@keel.dev", "hana.hr@keel.dev")


@pytest.fixture
def seeded(database, monkeypatch):
    """A capable tier nobody answers (connection refused): summaries and answers take their fallbacks at once."""
    monkeypatch.setenv("KEEL_SUPPORT_LLM_TRIAGE", "off")
    monkeypatch.setenv("KEEL_OPENAI_BASE_URL", f"http://127.0.0.1:{closed_port()}/v1")
    monkeypatch.setenv("KEEL_TIERS", json.dumps({"capable": ["openai/m1"]}))
    monkeypatch.setenv("KEEL_LLM_MAX_RETRIES", "0")
    config.reset_settings()
    old = set_gateway(None)
    if old is not None:
        old.log.close()
    seed_demo_company(history=False)
    return database


def _escalated() -> int:
    conv = open_conversation(HANA)
    send_message(conv.id, HANA, "What's the capital of France?")  # unclear: the bot asks to rephrase
    request_human(conv.id, HANA)
    return conv.id


def test_escalated_conversation_becomes_a_route_case(seeded):
    conv_id = _escalated()
    draft = eval_case_draft(conv_id)
    assert draft["eligible"] and draft["input"] == "What's the capital of France?"
    case_id = add_conversation_to_eval(conv_id, suite="support-routes", input_text=draft["input"],
                                       expected={"intent": "UNKNOWN", "route": "rephrase"},
                                       notes="bot asked to rephrase, customer gave up",
                                       created_by="sam.support@keel.dev")
    [case] = list_eval_cases(suite="support-routes", source="support_escalation")
    assert case["id"] == case_id and case["source_ref"] == f"support_conversation:{conv_id}"
    assert case["expected"] == {"intent": "UNKNOWN", "route": "rephrase"}
    assert case["created_by"] == "sam.support@keel.dev" and case["input_text"] == draft["input"]


def test_only_escalated_or_low_rated_and_valid_cases(seeded):
    happy = open_conversation(HANA)
    send_message(happy.id, HANA, "Show me my invoices")
    close_conversation(happy.id, HANA)
    rate(happy.id, HANA, 5)
    assert not eval_case_draft(happy.id)["eligible"]
    with pytest.raises(NotAllowed, match="escalated"):
        add_conversation_to_eval(happy.id, suite="support-intents", input_text="Show me my invoices",
                                 expected={"intent": "BILLING"}, notes="", created_by="x")
    unhappy = open_conversation(HANA)
    send_message(unhappy.id, HANA, "How do I reset my password?")
    close_conversation(unhappy.id, HANA)
    rate(unhappy.id, HANA, 1, "wrong article")
    assert eval_case_draft(unhappy.id)["eligible"]
    for suite, text, expected, problem in [
        ("support-everything", "x", {"intent": "FAQ"}, "suite must be one of"),
        ("support-routes", "   ", {"route": "faq_answer"}, "needs an input"),
        ("support-routes", "x", {"route": "teleport"}, "expected route"),
    ]:
        with pytest.raises(NotAllowed, match=problem):
            add_conversation_to_eval(unhappy.id, suite=suite, input_text=text, expected=expected, notes="",
                                     created_by="x")
    case_id = add_conversation_to_eval(unhappy.id, suite="support-intents", input_text="How do I reset my password?",
                                       expected={"intent": "FAQ"}, notes="rated 1", created_by="x")
    assert [c["id"] for c in list_eval_cases(suite="support-intents")] == [case_id]
