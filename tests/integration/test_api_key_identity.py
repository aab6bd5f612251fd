"""Issue 13 #5: two API keys whose displayed prefixes collide (forced here; 4 random characters collide after a
few thousand keys) are two identities: distinct subjects, distinct completion sessions, each billed to its own
workspace — through the real `/v1` and `/api/complete` routes, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import secrets
import time

import httpx
import pytest
from sqlalchemy import text
from starlette.applications import Starlette

from core import auth, config, db
from core.api import routes
from core.auth import billing_customer, principal_from_api_key
from core.completion import get_completion_service
from core.llm import set_gateway
from core.tables import ApiKey
from tests.support.fault_server import FaultServer, closed_port
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.timeout(120)

FORCED_PREFIX = "keel_sk_SAME"


def _key_with_prefix(workspace: str) -> tuple[str, int]:
    """An API key whose first 12 characters are FORCED_PREFIX, stored the way create_api_key stores keys."""
    auth.ensure_workspace(workspace)
    key = FORCED_PREFIX + secrets.token_urlsafe(30)
    with db.session() as s:
        record = ApiKey(workspace_id=workspace, name=f"{workspace} key", prefix=key[:12],
                        key_hash=hashlib.sha256(key.encode()).hexdigest(), created_at=time.time())
        s.add(record)
        s.flush()
        s.refresh(record)
        return key, record.id


@pytest.fixture
def two_keys(database):
    return _key_with_prefix("ws-a"), _key_with_prefix("ws-b")


def test_colliding_prefixes_are_distinct_identities_and_sessions(two_keys):
    (key_a, id_a), (key_b, id_b) = two_keys
    a, b = principal_from_api_key(key_a), principal_from_api_key(key_b)
    assert (a.workspace, b.workspace) == ("ws-a", "ws-b")
    assert a.sub != b.sub and a.sub == f"apikey:{id_a}" and b.sub == f"apikey:{id_b}"
    assert FORCED_PREFIX not in a.sub  # never derived from the displayed prefix
    service = get_completion_service()
    session_a = service.session(a.sub, "editor-1", billing_customer(a))
    session_b = service.session(b.sub, "editor-1", billing_customer(b))
    assert session_a is not session_b
    assert (session_a.customer, session_b.customer) == ("ws-a", "ws-b")
    # even one subject never shares a session across workspaces
    assert service.session("same", "editor-1", "ws-a") is not service.session("same", "editor-1", "ws-b")


def test_colliding_keys_bill_their_own_workspace_over_http(two_keys, monkeypatch):
    (key_a, id_a), (key_b, id_b) = two_keys
    with FaultServer(token_delay=0.005) as upstream, LiveServer(Starlette(routes=routes)) as server:
        monkeypatch.setenv("KEEL_PROVIDERS", json.dumps(
            {"up": {"kind": "openai", "base_url": upstream.url, "api_key": "k"}}))
        monkeypatch.setenv("KEEL_TIERS", json.dumps({"capable": ["up/m1"], "fast": ["up/m1"], "code": ["up/m2"]}))
        monkeypatch.setenv("KEEL_LOG_FLUSH_INTERVAL", "0.05")
        monkeypatch.setenv("KEEL_DEV_IDP_PORT", str(closed_port()))
        config.reset_settings()
        old = set_gateway(None)
        if old is not None:
            old.log.close()
        for key in (key_a, key_b, key_b):
            chat = httpx.post(f"{server.url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                              json={"model": "capable", "max_tokens": 3,
                                    "messages": [{"role": "user", "content": "hi"}]}, timeout=30)
            assert chat.status_code == 200, chat.text
            # the same editor session id from both keys: each must get (and be billed through) its own session
            complete = httpx.post(f"{server.url}/api/complete", headers={"Authorization": f"Bearer {key}"},
                                  json={"path": "a.py", "text": "def f():\n    return ", "cursor": 20,
                                        "session": "editor-1", "stream": False,
                                        "options": {"debounce_ms": 0, "cache": False}}, timeout=30)
            assert complete.status_code == 200, complete.text
        from core.llm import get_gateway

        get_gateway().log.flush()
    with db.get_engine().connect() as conn:
        rows = conn.execute(text("SELECT \"user\", customer, feature FROM request_log")).all()
    by_user: dict[str, set] = {}
    for user, customer, feature in rows:
        by_user.setdefault(user, set()).add((customer, feature))
    assert by_user[f"apikey:{id_a}"] == {("ws-a", "api"), ("ws-a", "completion")}, rows
    assert by_user[f"apikey:{id_b}"] == {("ws-b", "api"), ("ws-b", "completion")}, rows
