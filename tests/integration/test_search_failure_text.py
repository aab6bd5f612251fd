"""Issue 19 #2/#5: when the model stops part-way or its answer is rejected, search keeps what it wrote as a
draft next to the replacement, and the reason a person reads names no tier, target or time limit. Real index,
real SQL, a scripted model on loopback."""

from __future__ import annotations

import json

import pytest

from core import config
from core.auth import principal_from_claims
from core.idp import DEV_USERS
from core.llm import set_gateway
from tests.support.fault_server import FaultServer

pytestmark = pytest.mark.timeout(600)
INTERNAL = ("tier", "all targets failed", "loop/m1", "time limit", "Traceback", "exceeded")


@pytest.fixture
def model(database, monkeypatch):
    from core.search import forget_tables, sync_demo_corpus

    answer = "Unused PTO of up to five days carries into the next year [1]. The rest expires on 31 March [1]."
    with FaultServer(answer=answer, token_delay=0.0, cut_after=3) as server:
        monkeypatch.setenv("KEEL_PROVIDERS", json.dumps({"loop": {"kind": "openai", "base_url": server.url,
                                                                  "api_key": "k"}}))
        monkeypatch.setenv("KEEL_TIERS", json.dumps({t: ["loop/m1"] for t in ("fast", "capable", "code")}))
        monkeypatch.setenv("KEEL_LLM_MAX_RETRIES", "0")
        config.reset_settings()
        old = set_gateway(None)
        if old is not None:
            old.log.close()
        forget_tables()
        assert sync_demo_corpus().ok
        yield server
        forget_tables()


def _hana():
    user = next(u for u in DEV_USERS if u.sub.startswith("hana"))
    return principal_from_claims({"sub": user.sub, **user.claims})


def test_a_model_cut_off_mid_answer_keeps_its_draft_and_says_so_plainly(model):
    from core.search import ask

    model.script(["cut_midway"])
    run = ask(_hana(), "How many unused PTO days can I carry into next year?", use_llm_expansion=False)
    streamed = "".join(run)
    answer = run.answer
    assert run.replaced and run.draft and run.draft in streamed  # what streamed is kept, not erased
    assert answer.text and not answer.used_llm  # the sentences from the sources replace it
    assert "did not finish" in answer.fallback_reason
    assert not any(word in answer.fallback_reason for word in INTERNAL), answer.fallback_reason
