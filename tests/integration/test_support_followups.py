"""What a customer reads in the support chat (issue 19 #3, #4): no prompt scaffolding, no passage said twice,
and a follow-up naming an order the bot just listed is understood. Real SQL, a scripted model on loopback."""

from __future__ import annotations

import re

import pytest

from core.support import list_messages, open_conversation, send_message
from core.support._llm import repeats_passage
from tests.integration.test_support_db import HANA, _use_llm
from tests.support.fault_server import FaultServer


@pytest.fixture
def echoing_llm(database, monkeypatch):
    """A model that echoes its prompt's <data> fences around the passage, as the small model does."""
    from core.support import seed_demo_company

    answer = "<data>\nStandard shipping within the US takes 3–5 business days.\n</data>"
    with FaultServer(answer=answer, token_delay=0.0) as server:
        _use_llm(monkeypatch, server)
        seed_demo_company(history=False)
        yield server


def test_faq_reply_has_no_data_tags_and_does_not_repeat_the_passage(echoing_llm):
    conv = open_conversation(HANA)
    [reply] = send_message(conv.id, HANA, "How long does standard shipping take?")
    assert "<data>" not in reply.text and "</data>" not in reply.text
    assert reply.text.count("Standard shipping within the US takes 3–5 business days") == 1  # only the quote
    assert "Here is what our help centre says" in reply.text and "Read more:" in reply.text
    # what an agent reads in the transcript is the same stored text
    assert not any("<data" in m.text for m in list_messages(conv.id))


def test_repeats_passage_tells_a_copy_from_an_answer():
    passage = "Standard shipping within the US takes 3–5 business days. Express takes 1–2 business days."
    assert repeats_passage("Standard shipping within the US takes 3–5 business days.", passage)
    assert not repeats_passage("It usually arrives within a week; pick Express if you need it sooner.", passage)


def test_a_follow_up_naming_a_listed_order_is_looked_up(echoing_llm):
    conv = open_conversation(HANA)
    [listing] = send_message(conv.id, HANA, "Where is my order?")
    listed = re.findall(r"ORD-\d{5}", listing.text)
    assert listed, listing.text
    order = listed[-1]
    [reply] = send_message(conv.id, HANA, f"What is the status of {order}?")
    assert reply.meta["tool"] == "order_status" and order in reply.text, reply.text
    assert "not sure I understood" not in reply.text
    assert "follow-up" in reply.meta["decision"]["reason"]
    # an id the bot never showed is not assumed to be a follow-up: the usual routing decides
    [other] = send_message(conv.id, HANA, "What is the status of ORD-59999?")
    assert "follow-up" not in other.meta["decision"]["reason"]
