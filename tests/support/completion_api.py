"""The completion API on a real uvicorn server with a clean Keel for each test: the fixtures `server` and `api`,
shared by the `/api/complete` tests and the editor-protocol tests (import both names into the test module)."""

from __future__ import annotations

import os
import threading

import pytest
from starlette.applications import Starlette

from core import auth, config
from core.api import routes
from core.completion import set_completion_service
from core.llm import set_gateway
from tests.conftest import wait_until
from tests.support.fault_server import closed_port
from tests.support.live_server import LiveServer


@pytest.fixture(scope="module")
def server():
    with LiveServer(Starlette(routes=routes)) as live:
        yield live


@pytest.fixture
def api(monkeypatch, keel_home, server):
    """A workspace `acme` with an API key; yields the server URL, the key and its Authorization header."""
    for name in list(os.environ):
        if name.startswith("KEEL_") and name != "KEEL_HOME":
            monkeypatch.delenv(name)
    monkeypatch.setenv("KEEL_DEV_IDP_PORT", str(closed_port()))
    monkeypatch.setenv("KEEL_LOG_FLUSH_INTERVAL", "0.02")
    monkeypatch.setenv("KEEL_LLM_TIMEOUT", "600")  # the machine is shared and sometimes overloaded
    config.reset_settings()
    old = set_gateway(None)
    if old is not None:
        old.close()
    set_completion_service(None)
    auth.ensure_workspace("acme", "Acme", plan="pro")
    key, _ = auth.create_api_key("acme", "completion tests")
    yield {"url": server.url, "key": key, "headers": {"Authorization": f"Bearer {key}"}}
    service = set_completion_service(None)
    if service is not None:
        service.telemetry.flush()
    # a speculative generation started by an acceptance must not run into the next test's model
    wait_until(lambda: not any(t.name == "keel-completion-speculate" and t.is_alive()
                               for t in threading.enumerate()), timeout=120, interval=0.05)
