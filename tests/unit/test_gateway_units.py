"""Unit tests of the gateway's small parts: circuit breaker, latency buckets, refusal check, validation."""

from __future__ import annotations

import math
import time

import pytest

from core.config import Settings
from core.llm import (
    MAX_INPUT_CHARS,
    CircuitBreaker,
    Gateway,
    LLMCancelled,
    LLMError,
    LLMRequest,
    bucket_latency_ms,
    latency_bucket,
    looks_like_refusal,
)
from core.llm._log import LATENCY_BUCKET_BASE

pytestmark = pytest.mark.timeout(30)


# -- circuit breaker ----------------------------------------------------------------------------------


def test_breaker_stays_closed_below_the_threshold():
    breaker = CircuitBreaker(threshold=3, cooldown_s=60)
    for _ in range(2):
        assert breaker.allow()
        breaker.failure()
    assert breaker.state == "closed" and breaker.allow() and breaker.failures == 2


def test_breaker_opens_at_the_threshold_and_refuses():
    breaker = CircuitBreaker(threshold=3, cooldown_s=60)
    for _ in range(3):
        breaker.failure()
    assert breaker.state == "open"
    assert not breaker.allow() and not breaker.allow()


def test_success_resets_the_failure_count():
    breaker = CircuitBreaker(threshold=3, cooldown_s=60)
    breaker.failure()
    breaker.failure()
    breaker.success()
    breaker.failure()
    breaker.failure()
    assert breaker.state == "closed" and breaker.failures == 2


def test_half_open_lets_exactly_one_trial_through():
    breaker = CircuitBreaker(threshold=1, cooldown_s=0.05)
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    time.sleep(0.07)
    assert breaker.state == "half-open"
    assert breaker.allow()       # the trial
    assert not breaker.allow()   # everyone else waits for it
    assert not breaker.allow()


def test_a_successful_trial_closes_the_circuit():
    breaker = CircuitBreaker(threshold=2, cooldown_s=0.05)
    breaker.failure()
    breaker.failure()
    time.sleep(0.07)
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed" and breaker.failures == 0
    assert breaker.allow() and breaker.allow()


def test_a_failed_trial_reopens_for_a_full_cooldown():
    breaker = CircuitBreaker(threshold=2, cooldown_s=0.1)
    breaker.failure()
    breaker.failure()
    time.sleep(0.12)
    assert breaker.allow()
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    time.sleep(0.12)
    assert breaker.state == "half-open" and breaker.allow()


def test_threshold_zero_disables_the_breaker():
    breaker = CircuitBreaker(threshold=0, cooldown_s=60)
    for _ in range(100):
        breaker.failure()
    assert breaker.state == "closed" and breaker.allow()


# -- latency buckets -------------------------------------------------------------------------------------


@pytest.mark.parametrize("latency_ms", [1.0, 1.7, 3.3, 12.0, 99.9, 250.0, 1234.5, 40_000.0, 3_600_000.0])
def test_latency_bucket_round_trip_within_five_percent(latency_ms):
    back = bucket_latency_ms(latency_bucket(latency_ms))
    assert abs(back - latency_ms) / latency_ms <= 0.05


def test_latency_bucket_round_trip_over_a_dense_range():
    worst = 0.0
    value = 1.0
    while value < 1e7:
        back = bucket_latency_ms(latency_bucket(value))
        worst = max(worst, abs(back - value) / value)
        value *= 1.013
    assert worst <= 0.05
    assert worst > 0.01  # the buckets really are coarse: this is a histogram, not identity


def test_latency_buckets_are_monotonic_and_floor_at_one_ms():
    values = [0.0, 0.5, 1.0, 2.0, 10.0, 100.0, 1000.0]
    buckets = [latency_bucket(v) for v in values]
    assert buckets == sorted(buckets)
    assert latency_bucket(0.0) == latency_bucket(0.5) == latency_bucket(1.0) == 0
    assert latency_bucket(1000.0) == round(math.log(1000) / math.log(LATENCY_BUCKET_BASE))
    assert latency_bucket(1000.0) - latency_bucket(100.0) == pytest.approx(47, abs=1)


# -- refusals -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "I'm sorry, but I can't help with that.",
    "I am unable to provide that information.",
    "I cannot assist with this request.",
    "I can't do that.",
    "As an AI language model, I don't have opinions.",
    "i won't comply with that",
    "Sure.\nActually, I’m sorry".replace("’", "'"),
])
def test_refusals_are_recognised(text):
    assert looks_like_refusal(text)


@pytest.mark.parametrize("text", [
    "Paris is the capital of France.",
    "Here is a summary: the team cannot meet on Friday.",
    "The function returns None when the cache is empty.",
    "Sorry for the delay in shipping; your order is on its way.",
    "",
])
def test_normal_answers_are_not_refusals(text):
    assert not looks_like_refusal(text)


def test_refusal_is_only_looked_for_at_the_start():
    assert not looks_like_refusal("x" * 400 + " I'm sorry, I can't help with that.")
    assert looks_like_refusal("x" * 300 + " I'm sorry, I can't help with that.")


# -- request validation -----------------------------------------------------------------------------------


class FreePrices:
    def cost(self, provider, model, tokens_in, tokens_out):
        return 0.0


class NoBudgets:
    def reserve(self, customer, feature, estimate, request_id=""):
        return []


class RecordingLog:
    def __init__(self):
        self.entries = []
        self.prices = FreePrices()

    def write(self, entry, urgent=False):
        self.entries.append(entry)

    def release_holds(self, hold_ids):
        assert hold_ids == []

    def flush(self, timeout: float = 10.0):
        pass


class RecordingProvider:
    kind = "fake"
    loaded = True

    def __init__(self):
        self.calls = 0

    def models(self):
        return ["m"]

    def stream(self, model, request, usage, cancel):
        self.calls += 1
        usage.tokens_in, usage.tokens_out, usage.finish_reason = 3, 1, "stop"
        yield "fine"


@pytest.fixture
def gateway(tmp_path):
    settings = Settings(home=tmp_path, database_url="sqlite://", tiers={"capable": ["fake/m"]})
    provider = RecordingProvider()
    gw = Gateway(settings, {"fake": provider}, RecordingLog())
    gw.budgets = NoBudgets()  # unit tests touch no database
    gw.fake = provider
    return gw


def user(text):
    return {"role": "user", "content": text}


INVALID = {
    "no messages": (dict(messages=[]), "no messages"),
    "empty last message": (dict(messages=[user("hello"), user("   \n")]), "last message is empty"),
    "bad role": (dict(messages=[{"role": "tool", "content": "x"}]), "role must be system, user or assistant"),
    "missing role": (dict(messages=[{"content": "x"}]), "role must be"),
    "content not text": (dict(messages=[{"role": "user", "content": ["x"]}]), "content must be text"),
    "huge input": (dict(messages=[user("a" * (MAX_INPUT_CHARS + 1))]), "the limit is"),
    "huge across messages": (
        dict(messages=[user("a" * (MAX_INPUT_CHARS // 2)), user("b" * (MAX_INPUT_CHARS // 2 + 1))]), "the limit is"),
    "unknown tier": (dict(messages=[user("hi")], tier="gigantic"), "unknown tier 'gigantic'"),
    "max_tokens zero": (dict(messages=[user("hi")], max_tokens=0), "max_tokens"),
    "max_tokens huge": (dict(messages=[user("hi")], max_tokens=100_000), "max_tokens"),
}


@pytest.mark.parametrize("name", list(INVALID))
@pytest.mark.parametrize("how", ["complete", "stream"])
def test_invalid_requests_raise_llm_error_and_log_nothing(name, how, gateway):
    fields, fragment = INVALID[name]
    request = LLMRequest(**fields)
    with pytest.raises(LLMError, match=fragment) as info:
        if how == "complete":
            gateway.complete(request)
        else:
            for _ in gateway.stream(request):
                pass
    assert info.value.status == "error"
    assert gateway.log.entries == []
    assert gateway.fake.calls == 0


def test_the_unknown_tier_message_lists_the_configured_tiers(gateway):
    with pytest.raises(LLMError, match=r"configured tiers: capable"):
        gateway.complete(LLMRequest(messages=[user("hi")], tier="nope"))


def test_input_exactly_at_the_limit_is_accepted(gateway):
    result = gateway.complete(LLMRequest(messages=[user("a" * MAX_INPUT_CHARS)]))
    assert result.status == "ok" and result.text == "fine"
    assert [e.status for e in gateway.log.entries] == ["ok"]
    assert gateway.fake.calls == 1


def test_a_valid_request_is_logged_once_with_its_fields(gateway):
    request = LLMRequest(messages=[{"role": "system", "content": "s"}, user("hi")], feature="f", task="t",
                         user="u1", customer="c1", prompt_id="p", prompt_version="v1")
    result = gateway.complete(request)
    (entry,) = gateway.log.entries
    assert entry.request_id == result.request_id
    assert (entry.feature, entry.task, entry.user, entry.customer) == ("f", "t", "u1", "c1")
    assert (entry.prompt_id, entry.prompt_version, entry.provider, entry.model) == ("p", "v1", "fake", "m")
    assert (entry.tokens_in, entry.tokens_out, entry.status, entry.error) == (3, 1, "ok", None)
    assert entry.input_text == "[system] s\n\n[user] hi"


def test_text_of_a_stream_closed_before_it_finished_is_a_cancellation(gateway):
    stream = gateway.stream(LLMRequest(messages=[user("hi")]))
    stream.close()
    with pytest.raises(LLMCancelled):
        stream.text()  # it used to fail with "'NoneType' object has no attribute 'text'"
    assert gateway.stream(LLMRequest(messages=[user("hi")])).text() == "fine"
