"""The support bot with the real embedded model (SmolLM2 via llama.cpp): a grounded FAQ answer and a summary."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from core import db
from core.support import (
    Customer,
    get_handoff,
    list_messages,
    open_conversation,
    request_human,
    seed_demo_company,
    send_message,
)

pytestmark = pytest.mark.embedded_model


def test_faq_answer_and_handoff_summary_with_the_embedded_model(keel_home):
    seed_demo_company(history=False)
    hana = Customer("hana.hr@keel.dev", "hana.hr@keel.dev")
    conv = open_conversation(hana)
    [reply] = send_message(conv.id, hana, "How long does standard shipping take?")
    # Whatever the small model writes, the grounded passage and the link are always there.
    assert reply.meta["answer"] in ("llm", "fallback")
    assert "3–5 business days" in reply.text and "(/support_chat?article=shipping-times)" in reply.text
    request_human(conv.id, hana)
    handoff = get_handoff(conv.id)
    assert handoff.summary.strip() and handoff.summary_source in ("llm", "extractive")
    with db.get_engine().connect() as conn:
        from core.llm import get_gateway

        get_gateway().log.flush()
        rows = conn.execute(text("SELECT task, feature, prompt_id FROM request_log WHERE feature = 'support'")).all()
    assert {r[0] for r in rows} >= {"faq_answer", "handoff_summary"}
    assert {r[2] for r in rows} >= {"support/faq_answer", "support/handoff_summary"}
    assert len(list_messages(conv.id)) == 3
