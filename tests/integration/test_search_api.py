"""`POST /api/search` over HTTP with real ID tokens from the embedded provider: missing, API-key, forged and expired
credentials get 401; two users asking the same question see different sources; bad bodies get 400."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from starlette.applications import Starlette

from core import auth, config
from core.api._routes import routes
from core.idp import DevIdentityProvider
from tests.conftest import free_port
from tests.support.live_server import LiveServer
from tests.support.oidc import id_token_for, set_user_claims

pytestmark = pytest.mark.timeout(300)
EXEC, INTERN = "erin.exec@keel.dev", "milo.intern@keel.dev"
SECRET_DOC = "exec/project-nightjar-acquisition.md"


@pytest.fixture(scope="module")
def idp():
    provider = DevIdentityProvider(port=free_port()).start()
    try:
        yield provider
    finally:
        provider.stop()


@pytest.fixture
def api(idp, keel_home, monkeypatch):
    from core.search import forget_tables, sync_demo_corpus

    monkeypatch.setenv("KEEL_DEV_IDP_PORT", str(idp.port))
    config.reset_settings()
    auth._jwks.cache_clear()
    forget_tables()
    assert sync_demo_corpus().ok
    with LiveServer(Starlette(routes=routes)) as live:
        yield f"{live.url}/api/search", f"http://localhost:{idp.port}"
    auth._jwks.cache_clear()
    forget_tables()


def post(url, body, token=None, **kw):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(url, content=data, headers={**headers, "Content-Type": "application/json"}, timeout=120, **kw)


def test_credentials_are_checked(api):
    url, issuer = api
    question = {"question": "What is Project Nightjar?", "answer": False}
    assert post(url, question).status_code == 401
    auth.ensure_workspace("ws-search")
    key, _ = auth.create_api_key("ws-search", "k")
    r = post(url, question, key)
    assert r.status_code == 401 and "ID token" in r.json()["error"]
    token = id_token_for(issuer, EXEC)
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
    assert post(url, question, forged).status_code == 401
    now = int(time.time())
    set_user_claims(issuer, "late.user@keel.dev", {"email": "late.user@keel.dev", "groups": ["executives"],
                                                   "clearance": 3, "iat": now - 7200, "exp": now - 3600})
    r = post(url, question, id_token_for(issuer, "late.user@keel.dev"))
    assert r.status_code == 401 and "expired" in r.json()["error"]
    from core.search import audit_log

    assert audit_log() == []  # nothing was retrieved for a refused caller


def test_two_users_same_question_different_sources(api):
    url, issuer = api
    question = {"question": "Which company are we acquiring in Project Nightjar?", "answer": False}
    erin = post(url, question, id_token_for(issuer, EXEC))
    milo = post(url, question, id_token_for(issuer, INTERN))
    assert erin.status_code == milo.status_code == 200
    erin_docs = [s["doc_id"] for s in erin.json()["sources"]]
    milo_body = milo.json()
    assert erin_docs[0] == SECRET_DOC and "Lumen" in erin.json()["answer"]
    assert SECRET_DOC not in json.dumps(milo_body) and "Lumen" not in json.dumps(milo_body)
    from core.search import audit_log

    users = {e.user: e for e in audit_log(channel="api")}
    assert set(users) == {EXEC, INTERN} and SECRET_DOC not in users[INTERN].doc_ids


def test_streamed_events(api):
    url, issuer = api
    with httpx.stream("POST", url, json={"question": "How many PTO days carry forward?", "answer": False,
                                         "stream": True},
                      headers={"Authorization": f"Bearer {id_token_for(issuer, INTERN)}"}, timeout=60) as r:
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    assert [e["type"] for e in events][0] == "sources" and events[-1]["type"] == "done"
    # milo has clearance 0: the PTO guidelines (internal, level 1) are not his to see
    assert all(s["doc_id"] != "hr/pto-accrual-guidelines.md" for s in events[0]["sources"])


@pytest.mark.parametrize("body, fragment", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    ({"question": ""}, "type a question"),
    ({"question": "x" * 50_000}, "limit is 2,000"),
    ({"question": "hi", "k": 500}, "k must be"),
    ({"question": "hi", "k": "5"}, "k must be"),
    ({"question": "hi", "stream": "yes"}, "true or false"),
    ({"question": 12}, "must be text"),
    ({}, "must be text"),  # no question at all
])
def test_bad_bodies(api, body, fragment):
    url, issuer = api
    r = post(url, body, id_token_for(issuer, INTERN))
    assert r.status_code == 400 and fragment in r.json()["error"]


def test_oversized_body_is_refused(api):
    url, issuer = api
    r = post(url, json.dumps({"question": "a" * 200_000}), id_token_for(issuer, INTERN))
    assert r.status_code == 413
