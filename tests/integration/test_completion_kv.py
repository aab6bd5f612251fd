"""Raw text completions through the gateway on the real embedded model: KV state kept per cache key gives
the same tokens as a cold evaluation, switching files restores instead of re-evaluating, `stop_when` ends a
call normally, and a cancel frees the model between prompt chunks."""

from __future__ import annotations

import threading

import pytest

from core.llm import CancelToken, LLMCancelled, LLMError, LLMRequest, get_gateway
from tests.conftest import wait_until

pytestmark = [pytest.mark.embedded_model, pytest.mark.timeout(900)]


@pytest.fixture
def keel_home(monkeypatch, keel_home):
    """The shared keel_home, with a generous call time limit: the machine is shared and sometimes overloaded."""
    from core import config

    monkeypatch.setenv("KEEL_LLM_TIMEOUT", "600")
    config.reset_settings()
    from core.llm import set_gateway

    old = set_gateway(None)
    if old is not None:
        old.log.close()
    return keel_home

FILE_A = "".join(f"def area_{i}(width, height):\n    return width * height * {i}\n\n" for i in range(12))
FILE_B = "".join(f"const total{i} = prices.reduce((a, b) => a + b, {i});\n" for i in range(14))


def raw(prompt, key, max_tokens=8, **kw) -> tuple[str, object]:
    stream = get_gateway().stream(LLMRequest(messages=[], prompt=prompt, tier="code", feature="completion",
                                             max_tokens=max_tokens, temperature=0.0, cache_key=key, **kw))
    text = "".join(c.text for c in stream)
    return text, stream.result


def test_kv_state_per_key_gives_the_same_tokens_as_a_cold_run(keel_home):
    provider = get_gateway().providers["embedded"]
    provider.load()
    raw(FILE_A, "a")
    raw(FILE_B, "b")
    evaluated = provider.kv_stats()["tokens_evaluated"]
    warm_a, result = raw(FILE_A + "def area_12(", "a")  # back to a: its state is restored, not re-evaluated
    assert result.status == "ok"
    assert provider.kv_stats()["loads"] >= 1
    assert provider.kv_stats()["tokens_evaluated"] - evaluated < 20  # only the typed tokens (plus the last one)
    provider.kv_clear()
    cold_a, _ = raw(FILE_A + "def area_12(", None)
    assert warm_a == cold_a and warm_a.strip()


def test_stop_when_ends_the_call_as_ok_and_logs_it(keel_home):
    seen = []
    text, result = raw("# Python\ndef add(a, b):\n    return", "s", max_tokens=32,
                       stop_when=lambda: len(seen) >= 1 or bool(seen.append(1)))
    assert result.status == "ok" and result.finish_reason == "stop" and result.tokens_out <= 2


def test_bad_raw_requests_are_refused_before_the_model(keel_home):
    with pytest.raises(LLMError, match="empty"):
        get_gateway().stream(LLMRequest(messages=[], prompt="   ", tier="code"))
    with pytest.raises(LLMError, match="limit"):
        get_gateway().stream(LLMRequest(messages=[], prompt="x" * 300_000, tier="code"))
    with pytest.raises(LLMError, match="context"):
        raw("word " * 3000, None)


def test_cancel_during_prompt_evaluation_frees_the_model_quickly(keel_home):
    provider = get_gateway().providers["embedded"]
    provider.kv_clear()
    cancel = CancelToken()
    prompt = FILE_A * 3  # ~600 tokens: seconds of evaluation on 2 cores
    stream = get_gateway().stream(LLMRequest(messages=[], prompt=prompt, tier="code", feature="completion",
                                             max_tokens=8, cache_key="c"), cancel)
    evaluated = provider.kv_stats()["tokens_evaluated"]
    # cancel as soon as the first chunk of 32 prompt tokens is being evaluated
    threading.Thread(target=lambda: (wait_until(lambda: provider.busy_threads == 1, timeout=60, interval=0.005),
                                     cancel.cancel()), daemon=True).start()
    with pytest.raises(LLMCancelled):
        for _ in stream:
            pass
    # evaluation stopped at a chunk boundary, not after the whole prompt (timing-free: the machine is shared)
    assert provider.kv_stats()["tokens_evaluated"] - evaluated <= 2 * 32
    assert provider.busy_threads == 0
    rows = [r for r in _completion_rows() if r.status == "cancelled"]
    assert len(rows) == 1 and rows[0].tokens_out == 0


def _completion_rows():
    from sqlmodel import select

    from core import db
    from core.tables import RequestLog

    get_gateway().log.flush()
    with db.session() as s:
        return list(s.exec(select(RequestLog).where(RequestLog.feature == "completion")))
