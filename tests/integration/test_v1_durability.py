"""Issue 13 #12: a call answered with a 200 has its log row even if the server is SIGKILLed right after, and a
person's ID token on `/v1` is billed to (and budgeted as) their own workspace.

The server is a real uvicorn *process* serving Keel's routes (killed with SIGKILL, then restarted on the same
data directory); the log writer's batching window is set to 5 s, so a row that were still waiting in memory
when the answer went out would certainly be lost.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from sqlalchemy import text
from starlette.applications import Starlette

from core import auth, config, db
from core.api import routes
from core.config import REPO_ROOT
from core.idp import DevIdentityProvider
from core.llm import save_budgets, save_prices, set_gateway
from core.workspace import personal_workspace_id
from tests.conftest import free_port
from tests.support.fault_server import FaultServer, closed_port
from tests.support.live_server import LiveServer
from tests.support.oidc import id_token_for

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def upstream():
    with FaultServer(token_delay=0.005) as server:
        yield server


@pytest.fixture
def env(keel_home, upstream, monkeypatch):
    for name, value in {
        "KEEL_PROVIDERS": json.dumps({"up": {"kind": "openai", "base_url": upstream.url, "api_key": "k"}}),
        "KEEL_TIERS": json.dumps({"capable": ["up/m1"], "fast": ["up/m1"]}),
        "KEEL_LOG_FLUSH_INTERVAL": "5",  # without a durable write, the row waits 5 s in memory
        "KEEL_DEV_IDP_PORT": str(closed_port()),
    }.items():
        monkeypatch.setenv(name, value)
    config.reset_settings()
    auth.ensure_workspace("acme")
    key, record = auth.create_api_key("acme", "durability")
    return {"key": key, "record": record, "home": keel_home}


class ServerProcess:
    """`python -m uvicorn tests.support.api_app:app` on a free loopback port."""

    def __init__(self):
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ServerProcess":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "tests.support.api_app:app", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning"],
            cwd=REPO_ROOT, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                httpx.get(f"{self.url}/api/health", timeout=2)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def _row_count(request_id: str) -> int:
    with db.get_engine().connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM request_log WHERE request_id = :r"),
                            {"r": request_id}).scalar()


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_sigkill_right_after_the_response_keeps_the_calls_log_row(env, stream):
    server = ServerProcess().start()
    try:
        body = {"model": "capable", "max_tokens": 5, "stream": stream,
                "messages": [{"role": "user", "content": "hello"}]}
        response = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=30,
                              headers={"Authorization": f"Bearer {env['key']}"})
        server.kill()  # the moment the last byte arrived: no shutdown hook, no flush
        assert response.status_code == 200, response.text
        if stream:
            assert response.text.rstrip().endswith("data: [DONE]")
            request_id = response.headers["x-keel-request-id"]
        else:
            request_id = response.json()["keel"]["request_id"]
    finally:
        server.stop()
    restarted = ServerProcess().start()  # a restart on the same data directory
    try:
        assert _row_count(request_id) == 1
        assert httpx.get(f"{restarted.url}/api/health", timeout=10).json()["checks"]["request_log"]["ok"]
        with db.get_engine().connect() as conn:
            status, customer = conn.execute(text("SELECT status, customer FROM request_log WHERE request_id = :r"),
                                            {"r": request_id}).one()
        assert (status, customer) == ("ok", "acme")
    finally:
        restarted.stop()


# -- ID tokens on /v1 ------------------------------------------------------------------------------------------


@pytest.fixture
def idp_v1(env, monkeypatch, upstream):
    if auth.secrets_auth_section():
        pytest.skip(".streamlit/secrets.toml configures another OIDC provider")
    provider = DevIdentityProvider(port=free_port()).start()
    monkeypatch.setenv("KEEL_DEV_IDP_PORT", str(provider.port))
    monkeypatch.setenv("KEEL_LOG_FLUSH_INTERVAL", "0.05")
    config.reset_settings()
    auth._jwks.cache_clear()
    old = set_gateway(None)
    if old is not None:
        old.log.close()
    try:
        with LiveServer(Starlette(routes=routes)) as server:
            yield server.url, id_token_for(f"http://localhost:{provider.port}", "milo.intern@keel.dev")
    finally:
        auth._jwks.cache_clear()
        provider.stop()


def test_an_id_token_call_on_v1_is_billed_to_the_persons_workspace_and_budgeted(idp_v1, upstream):
    url, token = idp_v1
    own = personal_workspace_id("milo.intern@keel.dev")
    body = {"model": "capable", "max_tokens": 5, "messages": [{"role": "user", "content": "hello"}]}
    first = httpx.post(f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {token}"},
                       timeout=30)
    assert first.status_code == 200, first.text
    with db.get_engine().connect() as conn:
        user, customer = conn.execute(text("SELECT \"user\", customer FROM request_log")).one()
    assert (user, customer) == ("milo.intern@keel.dev", own)  # never a call with no customer

    save_prices([{"model": "m1", "input_per_mtok": 1.0, "output_per_mtok": 1.0}])
    save_budgets([{"scope": "customer", "key": own, "hard_usd": 0.0}])
    time.sleep(5.1)  # the gateway re-reads budget definitions every 5 s
    refused = httpx.post(f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {token}"},
                         timeout=30)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "budget_exceeded"
    assert len(upstream.requests) == 1  # the refused call never reached the provider
