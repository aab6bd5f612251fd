"""Monthly budgets enforced in the gateway, on SQLite and PostgreSQL, against a real loopback provider."""

from __future__ import annotations

import json
import threading
import time

import pytest
from sqlmodel import select

from core import config, db
from core.errors import KeelError
from core.llm import (
    BudgetRefused,
    LLMError,
    LLMRequest,
    RequestStatus,
    build_gateway,
    list_budgets,
    record_log_rows,
    save_budgets,
    save_prices,
)
from core.tables import RequestLog
from tests.support.fault_server import FaultServer


@pytest.fixture
def provider():
    with FaultServer(token_delay=0.05) as server:
        yield server


@pytest.fixture
def gateway(database, provider, monkeypatch):
    monkeypatch.setenv("KEEL_PROVIDERS", json.dumps({"up": {"kind": "openai", "base_url": provider.url,
                                                            "api_key": "k"}}))
    monkeypatch.setenv("KEEL_TIERS", json.dumps({"capable": ["up/m1"]}))
    monkeypatch.setenv("KEEL_LOG_FLUSH_INTERVAL", "0.02")
    config.reset_settings()
    save_prices([{"model": "m1", "input_per_mtok": 1000.0, "output_per_mtok": 1000.0}])  # $0.001 per token
    gw = build_gateway()
    yield gw
    gw.close()


def _spend(customer: str, feature: str, usd: float) -> None:
    row = dict(request_id="seed", attempt=0, created_at=time.time(), feature=feature, task="t", prompt_id=None,
               prompt_version=None, tier="capable", provider="up", model="m1", user="u", customer=customer,
               input_text=None, output_text=None, tokens_in=1, tokens_out=1, ttft_ms=1.0, latency_ms=2.0,
               latency_bucket=0, cost_usd=usd, status="ok", error=None, refusal=False, json_valid=None)
    with db.get_engine().begin() as conn:
        record_log_rows(conn, [row])


def _ask(customer="acme", feature="api", max_tokens=50) -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": "hi"}], customer=customer, feature=feature,
                      max_tokens=max_tokens)


def _rows(gw, status):
    gw.flush()
    with db.session() as s:
        return s.exec(select(RequestLog).where(RequestLog.status == status)).all()


def test_hard_customer_budget_refuses_before_the_provider_is_called(gateway, provider):
    _spend("acme", "api", 5.0)
    save_budgets([{"scope": "customer", "key": "acme", "soft_usd": 1.0, "hard_usd": 4.0}])
    with pytest.raises(BudgetRefused, match=r"customer 'acme' has reached its hard budget of \$4.00") as caught:
        gateway.complete(_ask())
    assert isinstance(caught.value, LLMError) and isinstance(caught.value, KeelError)
    assert caught.value.status == RequestStatus.BUDGET_REFUSED and caught.value.request_id
    assert provider.requests == []  # nothing left the gateway
    refused = _rows(gateway, "budget_refused")
    assert len(refused) == 1 and refused[0].customer == "acme" and "hard budget" in refused[0].error
    assert gateway.complete(_ask(customer="other")).status == "ok"  # other customers are unaffected


def test_feature_budget_and_soft_alert(gateway, provider):
    _spend("acme", "workspace", 2.0)
    save_budgets([{"scope": "feature", "key": "workspace", "soft_usd": 1.5, "hard_usd": 2.0},
                  {"scope": "customer", "key": "acme", "soft_usd": 100.0}])
    with pytest.raises(BudgetRefused):
        gateway.complete(_ask(feature="workspace"))
    status = {(b.scope, b.key): b for b in list_budgets()}
    assert status[("feature", "workspace")].over_soft and status[("feature", "workspace")].over_hard
    assert status[("feature", "workspace")].spent_usd == pytest.approx(2.0)
    assert not status[("customer", "acme")].over_soft  # soft only: an alert, never a refusal
    assert gateway.complete(_ask(feature="api")).status == "ok"


def test_calls_in_flight_hold_their_worst_case_so_concurrency_cannot_overshoot(gateway, provider):
    provider.default_mode = "slow"
    # Worst case per call ≈ (chars/3 + 16 input + 300 output tokens) × $0.001 ≈ $0.32; the budget fits one.
    save_budgets([{"scope": "customer", "key": "acme", "hard_usd": 0.5}])
    results, errors = [], []

    def call():
        try:
            results.append(gateway.complete(_ask(max_tokens=300)))
        except LLMError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 1 and len(errors) == 3
    assert all(isinstance(e, BudgetRefused) and e.status == "budget_refused" for e in errors)
    assert len(provider.requests) == 1


def test_a_tiny_budget_refuses_a_real_call_and_the_public_surface_reports_it(gateway, provider):
    save_budgets([{"scope": "customer", "key": "tiny", "hard_usd": 0.000001}])  # below one token's price
    request = _ask(customer="tiny", max_tokens=5)
    assert gateway.worst_case_cost(request) > 0.000001
    with pytest.raises(BudgetRefused, match="hard budget"):
        gateway.complete(request)
    answered = gateway.complete(_ask(customer="roomy", max_tokens=5))
    assert gateway.flush(timeout=10)
    (row,) = _rows(gateway, "ok")
    assert answered.cost_usd == pytest.approx(row.cost_usd) and answered.cost_usd > 0
    assert answered.cost_usd == pytest.approx(gateway.cost("up", "m1", answered.tokens_in, answered.tokens_out))
    stats = gateway.stats()
    assert stats["written"] == 2 and stats["failed"] == 0 and stats["queued"] == 0
    assert provider.requests and len(provider.requests) == 1  # the refused call never reached the provider


def test_no_budgets_means_no_enforcement(gateway, provider):
    _spend("acme", "api", 1e6)
    assert gateway.complete(_ask()).status == "ok"


@pytest.mark.parametrize("rows, message", [
    ([{"scope": "planet", "key": "x", "hard_usd": 1}], "scope must be"),
    ([{"scope": "customer", "key": "", "hard_usd": 1}], "name of 1-128"),
    ([{"scope": "customer", "key": "a", "hard_usd": "lots"}], "must be a number"),
    ([{"scope": "customer", "key": "a", "hard_usd": -1}], "between 0"),
    ([{"scope": "customer", "key": "a"}], "soft or a hard"),
    ([{"scope": "customer", "key": "a", "soft_usd": 5, "hard_usd": 1}], "must not exceed"),
    ([{"scope": "customer", "key": "a", "hard_usd": 1}] * 2, "twice"),
])
def test_bad_budgets_are_refused_and_nothing_changes(database, rows, message):
    save_budgets([{"scope": "customer", "key": "keep", "hard_usd": 3}])
    with pytest.raises(ValueError, match=message):
        save_budgets(rows)
    assert [(b.scope, b.key, b.hard_usd) for b in list_budgets()] == [("customer", "keep", 3.0)]


def test_v1_answers_429_when_the_workspace_budget_is_spent(gateway, provider):
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from core.api import routes
    from core.auth import create_api_key, ensure_workspace
    from core.llm import set_gateway

    ensure_workspace("acme")
    key, _ = create_api_key("acme", "ci")
    _spend("acme", "api", 10.0)
    save_budgets([{"scope": "customer", "key": "acme", "hard_usd": 1.0}])
    previous = set_gateway(gateway)
    try:
        with TestClient(Starlette(routes=routes)) as client:
            r = client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                            json={"model": "capable", "messages": [{"role": "user", "content": "hi"}]})
    finally:
        set_gateway(previous)
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "budget_exceeded" and "hard budget" in r.json()["error"]["message"]
    assert provider.requests == []
