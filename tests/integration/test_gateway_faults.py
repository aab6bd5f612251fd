"""Gateway reliability against a real fault-injecting OpenAI-compatible server on loopback.

Every fault (HTTP 500, 429 + Retry-After, connection refused, stalls, streams cut mid-way, malformed SSE,
invalid JSON for a schema) must end either in the fallback target's correct answer or in a clear
`LLMError`, and the request log must tell the truth about every attempt.
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import jsonschema
import openai
import pytest
from sqlmodel import select

from core import config, db
from core.llm import CancelToken, Chunk, LLMCancelled, LLMError, LLMRequest, build_gateway
from core.tables import RequestLog
from tests.support.fault_server import DEFAULT_ANSWER, FaultServer, closed_port, sample_for_schema

pytestmark = pytest.mark.timeout(60)

GOOD_ANSWER = "Paris is the capital of France."
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "score": {"type": "integer"}},
    "required": ["answer", "score"],
    "additionalProperties": False,
}


# -- fixtures and helpers ---------------------------------------------------------------------------


@pytest.fixture
def faulty():
    with FaultServer(answer=DEFAULT_ANSWER) as server:
        yield server


@pytest.fixture
def good():
    with FaultServer(answer=GOOD_ANSWER) as server:
        yield server


@pytest.fixture
def make_gateway(tmp_path, monkeypatch):
    """Build a gateway from KEEL_* variables pointing at the given base URLs, with a fresh SQLite log."""
    built = []
    for name in list(os.environ):
        if name.startswith("KEEL_"):
            monkeypatch.delenv(name)

    def make(providers: dict[str, str], tiers: dict[str, list[str]], **env):
        values = {
            "HOME": str(tmp_path),
            "PROVIDERS": json.dumps(
                {name: {"kind": "openai", "base_url": url, "api_key": "k"} for name, url in providers.items()}
            ),
            "TIERS": json.dumps(tiers),
            "LLM_FIRST_TOKEN_TIMEOUT": "1",
            "LLM_RETRY_BACKOFF": "0.01",
            "LLM_MAX_RETRIES": "2",
            "LOG_FLUSH_INTERVAL": "0.02",
        }
        values.update({key: str(value) for key, value in env.items()})
        for key, value in values.items():
            monkeypatch.setenv(f"KEEL_{key}", value)
        config.reset_settings()
        db.dispose_engine()
        settings = config.load_settings()
        assert settings.home == tmp_path.resolve()
        db.upgrade()
        gateway = build_gateway(settings)
        built.append(gateway)
        return gateway

    yield make
    for gateway in built:
        gateway.log.flush()
        gateway.log.close()
    db.dispose_engine()
    config.reset_settings()


def rows_for(gateway, request_id: str | None = None) -> list[RequestLog]:
    gateway.log.flush()
    assert gateway.log.failed == 0
    with db.session() as s:
        query = select(RequestLog)
        if request_id is not None:
            query = query.where(RequestLog.request_id == request_id)
        return list(s.exec(query.order_by(RequestLog.id)).all())


def ask(text: str = "What is the capital of France?", **kw) -> LLMRequest:
    return LLMRequest(messages=[{"role": "user", "content": text}], feature="faults", **kw)


def collect(stream) -> list[Chunk]:
    return [chunk for chunk in stream]


# -- the fault table ----------------------------------------------------------------------------------

# retryable: the error is retried on the same target (no token was shown yet) before falling back.
FAULTS = {
    "http500": dict(mode="http500", retryable=True, error="HTTP 500"),
    "http429": dict(mode="http429", retryable=True, error="HTTP 429"),
    "refused": dict(mode=None, retryable=True, error="connection failed before the response started"),
    "stall_before_first_token": dict(mode="stall_before_first_token", retryable=True, error="stalled"),
    "stall_before_headers": dict(mode="stall_before_headers", retryable=True, error="stalled"),
    "cut_midway": dict(mode="cut_midway", retryable=False, error="connection failed mid-stream"),
    "cut_before_tokens": dict(mode="cut_midway", retryable=True, error="connection failed mid-stream", cut_after=0),
    "malformed_sse": dict(mode="malformed_sse", retryable=True, error="broken stream"),
    "invalid_json": dict(mode="invalid_json", retryable=False, error="not valid JSON", schema=True),
}
MAX_RETRIES = 1  # keeps the stall cases at 2 x 1 s; retry counts for other values are tested below


def _faulty_url(case: dict, faulty: FaultServer) -> str:
    if case["mode"] is None:
        return f"http://127.0.0.1:{closed_port()}/v1"
    faulty.default_mode = case["mode"]
    faulty.cut_after = case.get("cut_after", 3)
    return faulty.url


def _assert_error_rows(rows, case, expected_attempts: int):
    assert len(rows) == expected_attempts, [(r.status, r.error) for r in rows]
    for index, row in enumerate(rows):
        assert row.status == "error"
        assert row.provider == "faulty" and row.model == "m1"
        assert row.attempt == index
        assert row.error and case["error"] in row.error, row.error
        assert row.feature == "faults" and row.tier == "capable"
        assert "capital of France" in row.input_text
        assert row.latency_ms >= 0
        if case.get("schema"):
            assert row.json_valid is False
            assert row.output_text  # the bad output is kept for debugging
        else:
            assert row.json_valid is None


@pytest.mark.parametrize("name", list(FAULTS))
def test_fault_falls_back_to_the_next_target(name, faulty, good, make_gateway):
    case = FAULTS[name]
    gateway = make_gateway(
        {"faulty": _faulty_url(case, faulty), "good": good.url},
        {"capable": ["faulty/m1", "good/m2"]},
        LLM_MAX_RETRIES=MAX_RETRIES,
    )
    request = ask(json_schema=SCHEMA) if case.get("schema") else ask()
    started = time.monotonic()
    result = gateway.complete(request)
    elapsed = time.monotonic() - started

    expected_attempts = MAX_RETRIES + 1 if case["retryable"] else 1
    assert result.status == "fallback"
    assert (result.provider, result.model) == ("good", "m2")
    assert result.attempts == expected_attempts + 1
    if case.get("schema"):
        assert result.json == sample_for_schema(SCHEMA) == {"answer": "x", "score": 1}
        assert json.loads(result.text) == result.json
    else:
        assert result.text == GOOD_ANSWER
    assert result.tokens_out > 0 and result.tokens_in > 0

    if case["mode"] is not None:
        assert len(faulty.requests) == expected_attempts
        assert all(body["model"] == "m1" and body["stream"] is True for body in faulty.requests)
    assert len(good.requests) == 1 and good.requests[0]["model"] == "m2"
    assert good.requests[0]["messages"] == request.messages

    rows = rows_for(gateway, result.request_id)
    _assert_error_rows(rows[:-1], case, expected_attempts)
    last = rows[-1]
    assert (last.status, last.provider, last.model) == ("fallback", "good", "m2")
    assert last.attempt == expected_attempts
    assert last.output_text == result.text
    assert last.error.startswith("fell back after: faulty/m1: ") and case["error"] in last.error
    assert last.json_valid is (True if case.get("schema") else None)
    assert last.tokens_out == result.tokens_out and last.ttft_ms is not None
    assert len(rows_for(gateway)) == len(rows)  # nothing logged under another request id
    stalls = expected_attempts if name.startswith("stall") else 0
    assert elapsed < 3 + stalls * 1.5


@pytest.mark.parametrize("name", list(FAULTS))
def test_fault_without_fallback_raises_a_clear_error(name, faulty, make_gateway):
    case = FAULTS[name]
    gateway = make_gateway({"faulty": _faulty_url(case, faulty)}, {"capable": ["faulty/m1"]},
                           LLM_MAX_RETRIES=MAX_RETRIES)
    request = ask(json_schema=SCHEMA) if case.get("schema") else ask()
    with pytest.raises(LLMError) as info:
        gateway.complete(request)
    error = info.value
    assert not isinstance(error, LLMCancelled)
    assert error.status == "error"
    message = str(error)
    assert message.startswith("all targets failed for tier 'capable': faulty/m1: ")
    assert case["error"] in message
    assert len(error.attempts) == 1 and case["error"] in error.attempts[0]
    assert error.request_id

    expected_attempts = MAX_RETRIES + 1 if case["retryable"] else 1
    if case["mode"] is not None:
        assert len(faulty.requests) == expected_attempts
    rows = rows_for(gateway, error.request_id)
    _assert_error_rows(rows, case, expected_attempts)
    assert len(rows_for(gateway)) == expected_attempts


@pytest.mark.parametrize("max_retries", [0, 2, 3])
def test_retry_count_follows_max_retries(max_retries, faulty, good, make_gateway):
    faulty.default_mode = "http500"
    gateway = make_gateway({"faulty": faulty.url, "good": good.url}, {"capable": ["faulty/m1", "good/m2"]},
                           LLM_MAX_RETRIES=max_retries)
    result = gateway.complete(ask())
    assert result.status == "fallback" and result.text == GOOD_ANSWER
    assert len(faulty.requests) == max_retries + 1
    rows = rows_for(gateway, result.request_id)
    assert [r.status for r in rows] == ["error"] * (max_retries + 1) + ["fallback"]
    assert [r.attempt for r in rows] == list(range(max_retries + 2))
    assert all("HTTP 500" in r.error and "injected internal error" in r.error for r in rows[:-1])


def test_a_retry_that_succeeds_on_the_same_target_is_ok_not_fallback(faulty, good, make_gateway):
    faulty.script(["http500", "malformed_sse"])
    gateway = make_gateway({"faulty": faulty.url, "good": good.url}, {"capable": ["faulty/m1", "good/m2"]})
    result = gateway.complete(ask())
    assert (result.status, result.provider, result.text) == ("ok", "faulty", DEFAULT_ANSWER)
    assert result.attempts == 3
    assert faulty.served == ["http500", "malformed_sse", "ok"]
    assert good.requests == []
    rows = rows_for(gateway, result.request_id)
    assert [r.status for r in rows] == ["error", "error", "ok"]
    assert "HTTP 500" in rows[0].error and "broken stream" in rows[1].error
    assert rows[2].error is None and rows[2].output_text == DEFAULT_ANSWER


def test_retry_after_zero_overrides_a_long_backoff(faulty, make_gateway):
    faulty.retry_after = "0"
    faulty.script(["http429", "http429"])
    gateway = make_gateway({"faulty": faulty.url}, {"capable": ["faulty/m1"]}, LLM_RETRY_BACKOFF=5)
    started = time.monotonic()
    result = gateway.complete(ask())
    assert time.monotonic() - started < 2.0  # the 5 s / 10 s backoff would have been used without Retry-After
    assert result.status == "ok" and result.text == DEFAULT_ANSWER
    assert faulty.served == ["http429", "http429", "ok"]
    assert [r.status for r in rows_for(gateway, result.request_id)] == ["error", "error", "ok"]


def test_retry_after_is_waited_for(faulty, make_gateway):
    faulty.retry_after = "1"
    faulty.script(["http429"])
    gateway = make_gateway({"faulty": faulty.url}, {"capable": ["faulty/m1"]}, LLM_RETRY_BACKOFF=0.01)
    started = time.monotonic()
    result = gateway.complete(ask())
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 3.0
    assert result.status == "ok"
    rows = rows_for(gateway, result.request_id)
    assert [r.status for r in rows] == ["error", "ok"]
    assert rows[1].created_at - rows[0].created_at >= 0.9


def test_stream_cut_after_tokens_resets_before_the_fallback_text(faulty, good, make_gateway):
    faulty.default_mode = "cut_midway"
    faulty.cut_after = 3
    gateway = make_gateway({"faulty": faulty.url, "good": good.url}, {"capable": ["faulty/m1", "good/m2"]})
    stream = gateway.stream(ask())
    chunks = collect(stream)

    resets = [i for i, c in enumerate(chunks) if c.reset]
    assert len(resets) == 1
    before, after = chunks[: resets[0]], chunks[resets[0] + 1:]
    assert chunks[resets[0]] == Chunk(text="", reset=True)
    assert "".join(c.text for c in before) == "The quick brown"
    assert "".join(c.text for c in after) == GOOD_ANSWER
    assert not any(c.reset for c in after)
    assert stream.result.status == "fallback" and stream.result.text == GOOD_ANSWER
    assert len(faulty.requests) == 1  # tokens were shown: no retry on the same target

    rows = rows_for(gateway, stream.request_id)
    assert [r.status for r in rows] == ["error", "fallback"]
    assert rows[0].output_text == "The quick brown"  # the partial output is logged truthfully
    assert rows[0].ttft_ms is not None
    assert "connection failed mid-stream" in rows[0].error


def test_no_reset_chunk_when_nothing_was_shown(faulty, good, make_gateway):
    faulty.default_mode = "http500"
    gateway = make_gateway({"faulty": faulty.url, "good": good.url}, {"capable": ["faulty/m1", "good/m2"]})
    chunks = collect(gateway.stream(ask()))
    assert not any(c.reset for c in chunks)
    assert "".join(c.text for c in chunks) == GOOD_ANSWER


def test_a_clean_eof_without_done_is_not_a_complete_answer(faulty, good, make_gateway):
    faulty.default_mode = "cut_midway_clean"
    gateway = make_gateway({"faulty": faulty.url, "good": good.url}, {"capable": ["faulty/m1", "good/m2"]},
                           LLM_MAX_RETRIES=0)
    result = gateway.complete(ask())
    assert result.text != "The quick brown"
    assert result.status == "fallback" and result.text == GOOD_ANSWER


# -- cancellation ---------------------------------------------------------------------------------------

LONG_ANSWER = " ".join(f"word{i}" for i in range(60))


def _slow_long(faulty: FaultServer) -> None:
    faulty.default_mode = "slow"
    faulty.token_delay = 0.05  # 60 words: 3 s if it ran to the end
    faulty.answer = LONG_ANSWER


@pytest.mark.parametrize("from_thread", [False, True], ids=["between-chunks", "while-blocked-in-read"])
def test_cancel_mid_stream_stops_at_once_and_never_falls_back(from_thread, faulty, good, make_gateway):
    _slow_long(faulty)
    gateway = make_gateway({"faulty": faulty.url, "good": good.url}, {"capable": ["faulty/m1", "good/m2"]})
    token = CancelToken()
    stream = gateway.stream(ask(), token)
    received = []
    started = time.monotonic()
    timer = None
    with pytest.raises(LLMCancelled) as info:
        for chunk in stream:
            received.append(chunk)
            if len(received) == 3:
                if from_thread:  # cancel while this thread waits for the next token inside the socket read
                    timer = threading.Timer(0.02, token.cancel)
                    timer.start()
                else:
                    canceller = threading.Thread(target=token.cancel)
                    canceller.start()
                    canceller.join(5)
    if timer is not None:
        timer.join(5)
    assert time.monotonic() - started < 1.5
    assert info.value.status == "cancelled" and info.value.request_id == stream.request_id
    assert 3 <= len(received) < 10
    assert stream.result is None
    assert good.requests == []  # a cancelled call never falls back
    assert len(faulty.requests) == 1  # nor is it retried
    rows = rows_for(gateway, stream.request_id)
    assert len(rows) == 1 and rows[0].provider == "faulty"
    assert rows[0].output_text == "".join(c.text for c in received)
    assert rows[0].output_text.startswith("word0 word1 word2")


@pytest.mark.parametrize("with_fallback", [True, False], ids=["with-fallback", "single-target"])
def test_cancel_mid_stream_is_logged_as_cancelled(with_fallback, faulty, good, make_gateway):
    _slow_long(faulty)
    chain = ["faulty/m1", "good/m2"] if with_fallback else ["faulty/m1"]
    gateway = make_gateway({"faulty": faulty.url, "good": good.url}, {"capable": chain})
    token = CancelToken()
    stream = gateway.stream(ask(), token)
    received = []
    with pytest.raises(LLMError) as info:
        for chunk in stream:
            received.append(chunk)
            if len(received) == 3:
                canceller = threading.Thread(target=token.cancel)  # cancel from another thread
                canceller.start()
                canceller.join(5)
    assert isinstance(info.value, LLMCancelled), str(info.value)
    rows = rows_for(gateway, stream.request_id)
    assert [(r.status, r.error) for r in rows] == [("cancelled", "cancelled by caller")]
    assert gateway.breakers["faulty"].failures == 0  # a user's cancel says nothing about the server


def test_cancel_while_waiting_for_headers_is_logged_as_cancelled(faulty, make_gateway):
    faulty.default_mode = "stall_before_headers"
    gateway = make_gateway({"faulty": faulty.url}, {"capable": ["faulty/m1"]})
    token = CancelToken()
    timer = threading.Timer(0.1, token.cancel)
    timer.start()
    started = time.monotonic()
    with pytest.raises(LLMCancelled):
        gateway.complete(ask(), token)
    timer.join(5)
    assert time.monotonic() - started < 1.6  # bounded by the 1 s first-token timeout today
    assert len(faulty.requests) == 1  # never retried after the cancel
    rows = rows_for(gateway)  # one call on this gateway: every row is its
    assert [r.status for r in rows] == ["cancelled"], [(r.status, r.error) for r in rows]
    assert gateway.breakers["faulty"].failures == 0


def test_cancel_before_start_raises_without_calling_the_server(faulty, make_gateway):
    gateway = make_gateway({"faulty": faulty.url}, {"capable": ["faulty/m1"]})
    token = CancelToken()
    token.cancel()
    with pytest.raises(LLMCancelled):
        gateway.complete(ask(), token)
    assert faulty.requests == []


def test_closing_the_stream_early_logs_a_cancelled_row(faulty, make_gateway):
    faulty.default_mode = "slow"
    faulty.token_delay = 0.02
    faulty.answer = LONG_ANSWER
    gateway = make_gateway({"faulty": faulty.url}, {"capable": ["faulty/m1"]})
    stream = gateway.stream(ask())
    iterator = iter(stream)
    first = [next(iterator).text for _ in range(2)]
    stream.close()
    rows = rows_for(gateway, stream.request_id)
    assert [(r.status, r.error) for r in rows] == [("cancelled", "stream closed by caller")]
    assert rows[0].output_text == "".join(first)


# -- circuit breaker ----------------------------------------------------------------------------------


def test_circuit_breaker_opens_skips_and_recovers(faulty, good, make_gateway):
    faulty.default_mode = "http500"
    gateway = make_gateway(
        {"faulty": faulty.url, "good": good.url}, {"capable": ["faulty/m1", "good/m2"]},
        LLM_MAX_RETRIES=0, LLM_BREAKER_THRESHOLD=3, LLM_BREAKER_COOLDOWN=0.5,
    )
    breaker = gateway.breakers["faulty"]
    for call in range(3):
        assert breaker.state == "closed"
        result = gateway.complete(ask())
        assert result.status == "fallback" and result.text == GOOD_ANSWER
        assert len(faulty.requests) == call + 1
    assert breaker.state == "open" and breaker.failures == 3

    # open: the faulty target is skipped without a request, and the skip is logged as an error row
    skipped = gateway.complete(ask())
    assert skipped.status == "fallback" and skipped.text == GOOD_ANSWER
    assert len(faulty.requests) == 3
    rows = rows_for(gateway, skipped.request_id)
    assert [(r.status, r.provider) for r in rows] == [("error", "faulty"), ("fallback", "good")]
    assert "circuit open" in rows[0].error and "3 failures" in rows[0].error
    assert rows[0].latency_ms == 0 and rows[0].ttft_ms is None
    assert "circuit open" in rows[1].error

    # without a fallback the skip is a clear error, still without touching the server
    with pytest.raises(LLMError, match="circuit open"):
        gateway.complete(ask(target="faulty/m1"))
    assert len(faulty.requests) == 3

    # after the cooldown one trial goes through; a failed trial opens the circuit again at once
    time.sleep(0.55)
    assert breaker.state == "half-open"
    gateway.complete(ask())
    assert len(faulty.requests) == 4 and breaker.state == "open"
    gateway.complete(ask())
    assert len(faulty.requests) == 4

    # the server recovers: after the cooldown the trial succeeds and the circuit closes
    faulty.default_mode = "ok"
    time.sleep(0.55)
    recovered = gateway.complete(ask())
    assert (recovered.status, recovered.provider, recovered.text) == ("ok", "faulty", DEFAULT_ANSWER)
    assert breaker.state == "closed" and breaker.failures == 0
    again = gateway.complete(ask())
    assert again.status == "ok" and len(faulty.requests) == 6
    assert [r.status for r in rows_for(gateway, recovered.request_id)] == ["ok"]


def test_retries_stop_when_the_circuit_opens(faulty, make_gateway):
    faulty.default_mode = "http500"
    gateway = make_gateway({"faulty": faulty.url}, {"capable": ["faulty/m1"]},
                           LLM_MAX_RETRIES=5, LLM_BREAKER_THRESHOLD=2, LLM_BREAKER_COOLDOWN=30)
    with pytest.raises(LLMError) as info:
        gateway.complete(ask())
    assert len(faulty.requests) == 2  # not 6: the open circuit ends the retries
    assert [r.status for r in rows_for(gateway, info.value.request_id)] == ["error", "error"]


def test_an_abandoned_half_open_trial_does_not_wedge_the_circuit(faulty, make_gateway):
    faulty.default_mode = "http500"
    gateway = make_gateway({"faulty": faulty.url}, {"capable": ["faulty/m1"]},
                           LLM_MAX_RETRIES=0, LLM_BREAKER_THRESHOLD=1, LLM_BREAKER_COOLDOWN=0.2)
    with pytest.raises(LLMError):
        gateway.complete(ask())
    time.sleep(0.25)
    faulty.default_mode = "slow"
    faulty.answer = LONG_ANSWER
    stream = gateway.stream(ask())
    next(iter(stream))  # the half-open trial is running ...
    stream.close()      # ... and the caller walks away
    faulty.default_mode = "ok"
    time.sleep(0.25)
    result = gateway.complete(ask())  # must be let through as a new trial
    assert result.status == "ok"


# -- the server itself, through the plain openai SDK -------------------------------------------------------


def test_fault_server_speaks_openai_to_the_sdk(faulty):
    client = openai.OpenAI(base_url=faulty.url, api_key="k", max_retries=0,
                           timeout=openai.Timeout(5.0, connect=2.0, read=1.0))
    assert [m.id for m in client.models.list()] == ["m1", "m2"]

    messages = [{"role": "user", "content": "hello there"}]
    stream = client.chat.completions.create(model="m1", messages=messages, stream=True,
                                            stream_options={"include_usage": True})
    texts, finish, usage = [], None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        if chunk.choices:
            texts.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
    assert "".join(texts) == DEFAULT_ANSWER
    assert finish == "stop"
    assert usage.completion_tokens == len(DEFAULT_ANSWER.split()) and usage.prompt_tokens > 0

    reply = client.chat.completions.create(model="m2", messages=messages, max_tokens=2)
    assert reply.choices[0].message.content == "The quick" and reply.choices[0].finish_reason == "length"

    schema_reply = client.chat.completions.create(
        model="m1", messages=messages, stream=True,
        response_format={"type": "json_schema", "json_schema": {"name": "o", "schema": SCHEMA, "strict": True}},
    )
    text = "".join(c.choices[0].delta.content or "" for c in schema_reply if c.choices)
    jsonschema.validate(json.loads(text), SCHEMA)

    faulty.script(["http500", "http429"])
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="m1", messages=messages, stream=True)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="m1", messages=messages)
    assert info.value.response.headers["retry-after"] == "0"

    assert len(faulty.requests) == 5
    assert faulty.requests[0]["stream"] is True and faulty.requests[0]["stream_options"] == {"include_usage": True}
    assert faulty.requests[2]["response_format"]["json_schema"]["schema"] == SCHEMA
    assert faulty.served == ["ok", "ok", "ok", "http500", "http429"]
    assert faulty.headers[0]["authorization"] == "Bearer k"


def test_fault_server_shuts_down_quickly_while_a_request_stalls():
    server = FaultServer(default_mode="stall_before_first_token", stall_s=30).start()
    client = openai.OpenAI(base_url=server.url, api_key="k", max_retries=0,
                           timeout=openai.Timeout(5.0, connect=1.0, read=5.0))
    worker = ThreadPoolExecutor(1)
    future = worker.submit(lambda: list(client.chat.completions.create(
        model="m1", messages=[{"role": "user", "content": "hi"}], stream=True)))
    deadline = time.monotonic() + 2
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.requests
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2
    with pytest.raises(Exception):
        future.result(timeout=5)
    worker.shutdown()


def test_the_gateway_sends_what_the_request_says(faulty, make_gateway):
    gateway = make_gateway({"faulty": faulty.url}, {"capable": ["faulty/m1"]})
    request = LLMRequest(
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        max_tokens=5, temperature=0.1, stop=["\n\n"], json_schema=SCHEMA,
    )
    result = gateway.complete(request)
    assert result.json == {"answer": "x", "score": 1}
    body = faulty.requests[0]
    assert body["model"] == "m1" and body["messages"] == request.messages
    assert body["max_tokens"] == 5 and body["temperature"] == 0.1 and body["stop"] == ["\n\n"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == SCHEMA
    row = rows_for(gateway, result.request_id)[0]
    assert row.json_valid is True and row.tokens_in == result.tokens_in > 0


def test_a_request_without_stops_or_schema_sends_neither(faulty, make_gateway):
    gateway = make_gateway({"faulty": faulty.url}, {"capable": ["faulty/m1"]})
    gateway.complete(LLMRequest(messages=[{"role": "user", "content": "Hi"}], max_tokens=5, stop=[]))
    assert "stop" not in faulty.requests[0] and "response_format" not in faulty.requests[0]


# -- concurrency ----------------------------------------------------------------------------------------


def test_32_concurrent_streams_all_complete_and_are_logged(faulty, make_gateway):
    faulty.default_mode = "slow"
    faulty.token_delay = 0.01
    gateway = make_gateway({"faulty": faulty.url}, {"capable": ["faulty/m1"]}, LLM_FIRST_TOKEN_TIMEOUT=5)
    barrier = threading.Barrier(32, timeout=10)

    def one(i: int):
        barrier.wait()
        stream = gateway.stream(ask(f"question {i}", user=f"u{i}"))
        text = "".join(c.text for c in stream if not c.reset)
        return stream.request_id, text, stream.result

    started = time.monotonic()
    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(one, range(32), timeout=30))
    assert time.monotonic() - started < 15
    assert all(text == DEFAULT_ANSWER for _, text, _ in results)
    assert all(r.status == "ok" and r.provider == "faulty" for _, _, r in results)
    assert len(faulty.requests) == 32

    rows = rows_for(gateway)
    assert len(rows) == 32
    assert {r.status for r in rows} == {"ok"}
    assert {r.request_id for r in rows} == {rid for rid, _, _ in results}
    assert {r.user for r in rows} == {f"u{i}" for i in range(32)}
    assert all(r.output_text == DEFAULT_ANSWER and r.ttft_ms is not None for r in rows)
