"""Issue 13 #3: hard budgets hold under concurrency, whatever the script of the input.

The upstream (a loopback OpenAI-compatible server) bills one prompt token per UTF-8 byte, the worst a byte-level
BPE tokenizer can do, so emoji (4 bytes each) and CJK (3 bytes) cost what they would on a real model. Two
gateways (two replicas: their own budget books and log writers) share one database, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from sqlalchemy import text

from core import config, db
from core.llm import LLMError, LLMRequest, build_gateway, save_budgets, save_prices
from core.llm._budgets import live_holds
from core.llm._gateway import input_token_bound
from tests.support.fault_server import FaultServer

pytestmark = pytest.mark.timeout(180)

PRICE_PER_TOKEN = 0.001  # $1000 per million tokens, in and out
INPUTS = {
    "ascii": "the quick brown fox " * 30,  # 600 bytes
    "emoji": "\U0001F600\U0001F680\U0001F525" * 50,  # 150 characters, 600 bytes
    "cjk": "預算超支測試" * 34,  # 204 characters, 612 bytes
}
MAX_TOKENS = 5


@pytest.fixture
def upstream():
    with FaultServer(token_delay=0.01) as server:
        server.prompt_tokens = "bytes"
        server.token_delay_all = True
        yield server


@pytest.fixture
def replicas(database, upstream, monkeypatch):
    monkeypatch.setenv("KEEL_PROVIDERS", json.dumps({"up": {"kind": "openai", "base_url": upstream.url,
                                                            "api_key": "k"}}))
    monkeypatch.setenv("KEEL_TIERS", json.dumps({"capable": ["up/m1"]}))
    monkeypatch.setenv("KEEL_LOG_FLUSH_INTERVAL", "0.05")
    config.reset_settings()
    save_prices([{"model": "m1", "input_per_mtok": PRICE_PER_TOKEN * 1e6, "output_per_mtok": PRICE_PER_TOKEN * 1e6}])
    gateways = [build_gateway(), build_gateway()]
    yield gateways
    for gw in gateways:
        gw.log.flush()
        gw.log.close()


def _ask(content: str, customer: str = "acme") -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": content}], customer=customer, feature="api",
                      max_tokens=MAX_TOKENS)


def _spent(customer: str) -> float:
    with db.get_engine().connect() as conn:
        return float(conn.execute(text("SELECT COALESCE(SUM(cost_usd), 0) FROM log_rollup_customer"
                                       " WHERE customer = :c"), {"c": customer}).scalar())


def test_the_token_bound_is_never_below_a_byte_level_tokenizer():
    for content in [*INPUTS.values(), "\ud800 lone", "x"]:
        request = _ask(content)
        assert input_token_bound(request) >= len(content.encode("utf-8", "surrogatepass")) + 4
    # the old estimate (characters / 3 + 16) was 66 tokens for 600 bytes of emoji
    assert input_token_bound(_ask(INPUTS["emoji"])) >= 600


@pytest.mark.parametrize("script", list(INPUTS))
def test_concurrent_calls_never_overshoot_a_hard_budget(replicas, upstream, script):
    content = INPUTS[script]
    one_call = (len(content.encode()) + 4 + MAX_TOKENS) * PRICE_PER_TOKEN  # what the upstream bills per call
    hard = round(one_call * 6.5, 6)  # room for six calls at their real cost, fewer at their worst case
    save_budgets([{"scope": "customer", "key": "acme", "hard_usd": hard}])
    outcomes: list[str] = []
    lock = threading.Lock()

    def caller(gateway) -> None:
        for _ in range(3):
            try:
                gateway.complete(_ask(content))
                result = "ok"
            except LLMError as exc:
                result = exc.status
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=caller, args=(replicas[i % 2],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for gw in replicas:
        gw.log.flush()
    spent = _spent("acme")
    accepted = outcomes.count("ok")
    assert len(outcomes) == 24 and set(outcomes) <= {"ok", "budget_refused"}
    assert accepted >= 1 and outcomes.count("budget_refused") >= 1
    assert accepted == len(upstream.requests)  # a refused call never reached the provider
    assert spent == pytest.approx(accepted * one_call)
    # Holds cover the worst case, so spend never passes the limit at all (the brief allows one call's worst case).
    assert spent <= hard + 1e-9, f"{script}: spent ${spent:.4f} of a ${hard:.4f} hard budget ({accepted} calls)"
    assert live_holds("customer", "acme") == 0.0  # every hold went with its cost row


def test_a_hold_lives_until_the_cost_row_is_committed(replicas, upstream):
    upstream.token_delay = 0.2
    save_budgets([{"scope": "customer", "key": "acme", "hard_usd": 100.0}])
    gateway = replicas[0]
    done = threading.Event()
    threading.Thread(target=lambda: (gateway.complete(_ask("hello there")), done.set()), daemon=True).start()
    deadline = time.monotonic() + 10
    while live_holds("customer", "acme") == 0.0 and time.monotonic() < deadline:
        time.sleep(0.01)
    held = live_holds("customer", "acme")
    assert held >= input_token_bound(_ask("hello there")) * PRICE_PER_TOKEN
    assert done.wait(20)
    gateway.log.flush()
    # after: no hold, and the cost is in the rollups (never a moment with neither: see the concurrency test)
    assert live_holds("customer", "acme") == 0.0 and _spent("acme") > 0
    with db.get_engine().connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM budget_hold")).scalar() == 0


def test_a_refused_call_holds_nothing_and_other_customers_are_untouched(replicas, upstream):
    save_budgets([{"scope": "customer", "key": "acme", "hard_usd": 0.0001}])
    with pytest.raises(LLMError) as caught:
        replicas[0].complete(_ask(INPUTS["emoji"]))
    assert caught.value.status == "budget_refused" and "hard budget" in str(caught.value)
    assert replicas[1].complete(_ask(INPUTS["emoji"], customer="other")).status == "ok"
    with db.get_engine().connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM budget_hold")).scalar() == 0
