"""The search answer check runs on every model answer (issue 13, item 8), through `/api/search` over a real
uvicorn with a loopback model that answers "...do not cover this. The CEO earns 310,000 euros": the unsupported
sentence is never shown; the extractive fallback from the sources is, and the response says why."""

from __future__ import annotations

import json

import httpx
import pytest
from starlette.applications import Starlette

from core import auth, config
from core.api._routes import routes
from core.idp import DevIdentityProvider
from core.llm import set_gateway
from tests.conftest import free_port
from tests.support.fault_server import FaultServer
from tests.support.live_server import LiveServer
from tests.support.oidc import id_token_for

pytestmark = pytest.mark.timeout(300)
EXEC = "erin.exec@keel.dev"
HOSTILE = "The documents do not cover this. The CEO earns 310,000 euros a year [1]."


@pytest.fixture(scope="module")
def idp():
    provider = DevIdentityProvider(port=free_port()).start()
    try:
        yield provider
    finally:
        provider.stop()


@pytest.fixture
def api(idp, database, monkeypatch):
    from core.search import forget_tables, sync_demo_corpus

    with FaultServer(answer=HOSTILE, token_delay=0.0) as model:
        monkeypatch.setenv("KEEL_DEV_IDP_PORT", str(idp.port))
        monkeypatch.setenv("KEEL_PROVIDERS", json.dumps(
            {"loop": {"kind": "openai", "base_url": model.url, "api_key": "k"}}))
        monkeypatch.setenv("KEEL_TIERS", json.dumps({"fast": ["loop/m1"], "capable": ["loop/m1"],
                                                     "code": ["loop/m1"]}))
        monkeypatch.setenv("KEEL_LLM_MAX_RETRIES", "0")
        config.reset_settings()
        old = set_gateway(None)
        if old is not None:
            old.log.close()
        auth._jwks.cache_clear()
        forget_tables()
        assert sync_demo_corpus().ok
        with LiveServer(Starlette(routes=routes)) as live:
            yield f"{live.url}/api/search", id_token_for(f"http://localhost:{idp.port}", EXEC), model
        auth._jwks.cache_clear()
        forget_tables()


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_an_abstention_followed_by_a_claim_is_checked_and_replaced(api, stream):
    url, token, model = api
    body = {"question": "Which company are we acquiring in Project Nightjar?", "stream": stream}
    response = httpx.post(url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=120)
    assert response.status_code == 200
    if stream:
        events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
        answer = events[-1]
        assert answer["type"] == "done"
    else:
        answer = response.json()
    assert model.requests, "the model was asked (the question is covered by the documents)"
    assert answer["covered"] and not answer["used_llm"]
    assert "310,000" not in answer["answer"] and "CEO earns" not in answer["answer"]
    assert "not supported by the sources" in answer["fallback_reason"]
    assert "Lumen" in answer["answer"]  # the extractive answer from the Nightjar document
