"""`/infill` (llama.cpp's shape) and `/v1/completions` (OpenAI's, with `suffix`) over a real uvicorn server, with
the request bodies the editors really send: llama.vscode and llama.vim (`/infill`), Continue's OpenAI provider
(`/v1/fim/completions`), Tabby's `openai/completion` backend and the openai SDK (`/v1/completions`). Both run
on the completion engine: auth with workspace API keys, the protocol's own error shape, logging as feature
`completion`, the cache, per-file KV state and cancellation."""

from __future__ import annotations

import json
import threading

import httpx
import openai
import pytest
from sqlmodel import select

from core import db
from core.completion import get_completion_service
from core.llm import get_gateway
from core.tables import CompletionEvent, RequestLog
from tests.conftest import wait_until
from tests.support import completion_api

pytestmark = pytest.mark.timeout(900)
server, api = completion_api.server, completion_api.api  # the shared fixtures

PREFIX = "def mean(values):\n"
MIDDLE = "    total = "
SUFFIX = "\n    return total / len(values)\n"
CHUNK = "def clamp(x, lo, hi):\n    return max(lo, min(hi, x))\n"


# The bodies below are the shapes the clients send (field names, types and defaults taken from their source).

def llama_vscode_body(n_predict=128):
    """llama.vscode (src/llama-server.ts, createRequestPayload): defaultRequestParams spread in, n_indent when known."""
    return {"input_prefix": PREFIX, "input_suffix": SUFFIX,
            "input_extra": [{"text": CHUNK, "time": 1731000000.0, "filename": "stats/util.py"}],
            "prompt": MIDDLE, "n_predict": n_predict, "top_k": 40, "top_p": 0.99, "stream": False,
            "samplers": ["top_k", "top_p", "infill"], "cache_prompt": True, "n_indent": 4,
            "t_max_prompt_ms": 500, "t_max_predict_ms": 2500}


LLAMA_VSCODE_WARMUP = {  # createRequestPayload(noPredict=true): ring-buffer chunks sent ahead, nothing predicted
    "input_prefix": "", "input_suffix": "", "input_extra": [{"text": CHUNK, "time": 1.0, "filename": "stats/util.py"}],
    "prompt": "", "n_predict": 0, "samplers": [], "cache_prompt": True, "t_max_prompt_ms": 500,
    "t_max_predict_ms": 1,
}

LLAMA_VIM_FIELDS = ["content", "timings/prompt_n", "timings/prompt_ms", "timings/prompt_per_token_ms",
                    "timings/prompt_per_second", "timings/predicted_n", "timings/predicted_ms",
                    "timings/predicted_per_token_ms", "timings/predicted_per_second", "truncated", "tokens_cached"]


def llama_vim_body():
    """llama.vim (autoload/llama.vim, llama#fim): the same fields plus response_fields with slash paths."""
    return {"input_prefix": PREFIX, "input_suffix": SUFFIX,
            "input_extra": [{"text": CHUNK, "time": 12.5, "filename": "stats/util.py"}],
            "prompt": MIDDLE, "n_predict": 128, "n_indent": 4, "top_k": 40, "top_p": 0.99, "stream": False,
            "samplers": ["top_k", "top_p", "infill"], "cache_prompt": True, "t_max_prompt_ms": 500,
            "t_max_predict_ms": 1000, "response_fields": LLAMA_VIM_FIELDS}


def continue_fim_body():
    """Continue's OpenAI provider (core/llm/llms/OpenAI.ts, _streamFim), posted to {apiBase}fim/completions."""
    return {"model": "code", "prompt": PREFIX + MIDDLE, "suffix": SUFFIX, "max_tokens": 64, "temperature": 0.01,
            "top_p": None, "frequency_penalty": None, "presence_penalty": None,
            "stop": ["\n\n", "\r\n\r\n", "/src/", "```"], "stream": True}


def tabby_body():
    """Tabby's openai/completion engine (http-api-bindings/src/completion/openai.rs): suffix is null when empty."""
    return {"model": "code", "prompt": PREFIX + MIDDLE, "suffix": None, "max_tokens": 64, "temperature": 0.1,
            "stream": True, "presence_penalty": 0.0}


def post(api, path, payload=None, *, headers=None, content=None, timeout=600):
    hdrs = dict(api["headers"] if headers is None else headers)
    if content is not None:
        return httpx.post(api["url"] + path, content=content, headers=hdrs, timeout=timeout)
    return httpx.post(api["url"] + path, json=payload, headers=hdrs, timeout=timeout)


def sse(response) -> list:
    out = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line[6:]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def rows(table, **where):
    get_gateway().log.flush()
    get_completion_service().telemetry.flush()
    with db.session() as s:
        query = select(table)
        for name, value in where.items():
            query = query.where(getattr(table, name) == value)
        return list(s.exec(query))


def client(api) -> openai.OpenAI:
    return openai.OpenAI(base_url=api["url"] + "/v1", api_key=api["key"], max_retries=0, timeout=600)


# -- auth and bad input, each in its protocol's error shape (no model needed) --------------------------------


def test_both_protocols_require_a_workspace_api_key(api):
    r = post(api, "/infill", llama_vscode_body(), headers={})
    assert r.status_code == 401 and r.json()["error"]["code"] == 401
    assert r.json()["error"]["type"] == "authentication_error"
    r = post(api, "/v1/completions", tabby_body(), headers={"Authorization": "Bearer keel_sk_nope"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert "unknown API key" in r.json()["error"]["message"]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=api["url"] + "/v1", api_key="keel_sk_wrong", max_retries=0).completions.create(
            model="code", prompt="x = ", suffix="\n")


def test_llama_vscode_warmup_is_answered_without_the_model_and_x_api_key_works(api):
    r = post(api, "/infill", LLAMA_VSCODE_WARMUP)
    assert r.status_code == 200, r.text
    assert r.json()["content"] == "" and r.json()["stop"] is True and r.json()["tokens_predicted"] == 0
    # Continue sends the key as x-api-key too; it alone is enough
    r = post(api, "/infill", LLAMA_VSCODE_WARMUP, headers={"x-api-key": api["key"]})
    assert r.status_code == 200
    assert not get_gateway().providers["embedded"].loaded


@pytest.mark.parametrize("payload, status, message", [
    ({}, 400, "needs 'input_prefix'"),
    ({**llama_vscode_body(), "input_prefix": 3}, 400, "'input_prefix' must be a string"),
    ({**llama_vscode_body(), "n_predict": -1}, 400, "'n_predict' must be 0 or more"),
    ({**llama_vscode_body(), "n_predict": "128"}, 400, "'n_predict' must be an integer"),
    ({**llama_vscode_body(), "input_extra": {"text": "x"}}, 400, "'input_extra' must be a list"),
    ({**llama_vscode_body(), "input_extra": [{"filename": "a.py"}]}, 400, "input_extra[0] must be an object"),
    ({**llama_vscode_body(), "stream": "yes"}, 400, "'stream' must be true or false"),
    ({**llama_vscode_body(), "t_max_predict_ms": -5}, 400, "t_max_predict_ms"),
    ({**llama_vscode_body(), "input_prefix": "abc\x00\x01def"}, 400, "binary"),
    ([1, 2], 400, "JSON object"),
])
def test_infill_bad_input_is_a_clear_400_in_llama_cpp_shape(api, payload, status, message):
    r = post(api, "/infill", payload)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == status and error["type"] == "invalid_request_error" and message in error["message"]


@pytest.mark.parametrize("payload, message", [
    ({"prompt": "x = ", "suffix": "\n"}, "'model' is required"),
    ({"model": "gpt-4o", "prompt": "x = "}, "unknown model"),
    ({"model": "fast", "prompt": "x = "}, "use model 'code'"),
    ({"model": "code"}, "'prompt' is required"),
    ({"model": "code", "prompt": 42}, "'prompt' is required"),
    ({"model": "code", "prompt": "x = ", "suffix": 7}, "'suffix' must be a string"),
    ({"model": "code", "prompt": "x = ", "max_tokens": -3}, "'max_tokens' must be 0 or more"),
    ({"model": "code", "prompt": "x = ", "n": 2}, "'n' must be 1"),
    ({"model": "code", "prompt": "x = ", "stop": [1]}, "'stop' must be"),
    ({"model": "code", "prompt": "x = ", "temperature": 9}, "'temperature' must be"),
    ({"model": "code", "prompt": "\x00\x01\x02binary"}, "binary"),
])
def test_openai_bad_input_is_a_clear_400_in_openai_shape(api, payload, message):
    r = post(api, "/v1/completions", payload)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and message in error["message"]


def test_empty_malformed_and_huge_bodies(api):
    for path in ("/infill", "/v1/completions"):
        r = post(api, path, content=b"")
        assert r.status_code == 400 and "empty" in json.dumps(r.json()), path
        r = post(api, path, content=b'{"input_prefix": ')
        assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"], path
        huge = json.dumps({"model": "code", "prompt": "x" * 4_100_000, "input_prefix": ""}).encode()
        r = post(api, path, content=huge, timeout=60)
        assert r.status_code == 413 and "larger than" in r.json()["error"]["message"], path
    with pytest.raises(openai.BadRequestError, match="use model 'code'"):
        client(api).completions.create(model="fast", prompt="x = ", suffix="\n")


# -- the embedded model ------------------------------------------------------------------------------------


@pytest.mark.embedded_model
def test_llama_vscode_request_completes_logs_and_is_then_cached(api):
    headers = {**api["headers"], "X-Keel-Filename": "stats/mean.py"}
    r = post(api, "/infill", llama_vscode_body(), headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body["content"], str) and body["content"].strip(), body
    assert "\n" not in body["content"]  # "total = " ends mid-statement: one line
    assert body["stop"] is True and body["tokens_predicted"] > 0 and body["tokens_evaluated"] > 0
    assert set(body["timings"]) >= {"prompt_n", "prompt_ms", "predicted_n", "predicted_ms", "predicted_per_second"}
    assert body["keel"]["source"] == "model" and not body["keel"]["cached"]
    # the KV state is this file's: the cache key is derived from the filename
    assert get_gateway().providers["embedded"].kv_stats()["active"].endswith(":stats/mean.py")
    logged = rows(RequestLog, feature="completion")
    assert len(logged) == 1 and logged[0].status == "ok" and json.loads(logged[0].metadata_json) == {"client": "infill"}
    assert logged[0].user.startswith("apikey:") and logged[0].request_id == body["keel"]["request_id"]
    assert ": stats/util.py\ndef clamp(x, lo, hi):" in logged[0].input_text  # input_extra reached the prompt

    again = post(api, "/infill", llama_vscode_body(), headers=headers).json()
    assert again["content"] == body["content"] and again["keel"]["source"] == "exact"
    assert again["keel"]["latency_ms"] < 5
    assert len(rows(RequestLog, feature="completion")) == 1  # the cache hit never reached the model
    assert {e.source for e in rows(CompletionEvent)} == {"model", "exact"}


@pytest.mark.embedded_model
def test_llama_vim_response_fields_are_flat_slash_paths(api):
    r = post(api, "/infill", llama_vim_body())
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) <= set(LLAMA_VIM_FIELDS) and {"content", "timings/prompt_n", "timings/predicted_n"} <= set(body)
    assert body["timings/predicted_n"] > 0 and isinstance(body["timings/prompt_ms"], float)


@pytest.mark.embedded_model
def test_infill_streams_content_then_a_final_stop_event(api):
    with httpx.stream("POST", api["url"] + "/infill", json={**llama_vscode_body(), "stream": True},
                      headers=api["headers"], timeout=600) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse(r)
    assert events and all(isinstance(e, dict) for e in events)  # llama.cpp's /infill sends no [DONE]
    assert all(e["stop"] is False for e in events[:-1]) and events[-1]["stop"] is True
    text = "".join(e["content"] for e in events[:-1])
    assert text.strip() and events[-1]["tokens_predicted"] > 0 and "timings" in events[-1]


@pytest.mark.embedded_model
def test_openai_sdk_completions_with_suffix_streamed_and_not(api):
    c = client(api)
    result = c.completions.create(model="code", prompt=PREFIX + MIDDLE, suffix=SUFFIX, max_tokens=24)
    assert result.object == "text_completion" and result.model == "code"
    text = result.choices[0].text
    assert text.strip() and "\n" not in text and result.choices[0].finish_reason in ("stop", "length")
    assert result.usage.completion_tokens > 0 and result.usage.prompt_tokens > 0

    pieces, finishes = [], []
    stream = c.completions.create(model="code", prompt=PREFIX + "    count = ", suffix=SUFFIX, max_tokens=24,
                                  stream=True, stream_options={"include_usage": True})
    usage = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.text)
            finishes.append(choice.finish_reason)
    assert "".join(pieces).strip() and finishes[-1] in ("stop", "length") and all(f is None for f in finishes[:-1])
    assert usage is not None and usage.completion_tokens > 0
    logged = rows(RequestLog, feature="completion")
    assert len(logged) == 2 and {json.loads(r.metadata_json)["client"] for r in logged} == {"openai"}


@pytest.mark.embedded_model
def test_continue_fim_body_streams_delta_content_and_done(api):
    headers = {"Content-Type": "application/json", "Accept": "application/json", "x-api-key": api["key"],
               "Authorization": f"Bearer {api['key']}"}
    with httpx.stream("POST", api["url"] + "/v1/fim/completions", json=continue_fim_body(), headers=headers,
                      timeout=600) as r:
        assert r.status_code == 200, r.read()
        events = sse(r)
    assert events[-1] == "[DONE]"
    chunks = [e for e in events[:-1] if e.get("choices")]
    text = "".join(c["choices"][0]["delta"]["content"] for c in chunks)  # what Continue reads
    assert text.strip() and text == "".join(c["choices"][0]["text"] for c in chunks)
    assert "\n\n" not in text  # Continue's stop strings are honoured


@pytest.mark.embedded_model
def test_tabby_body_with_null_suffix_ends_with_a_finish_reason_before_done(api):
    with httpx.stream("POST", api["url"] + "/v1/completions", json=tabby_body(), headers=api["headers"],
                      timeout=600) as r:
        assert r.status_code == 200, r.read()
        events = sse(r)
    assert events[-1] == "[DONE]"
    last = events[-2]
    assert last["choices"][0]["finish_reason"] in ("stop", "length")  # Tabby stops reading here
    assert "".join(e["choices"][0]["text"] for e in events[:-1] if e.get("choices")).strip()


@pytest.mark.embedded_model
def test_a_newer_request_of_the_same_editor_cancels_the_older_one(api):
    slow = "".join(f"value_{i} = compute({i})\n" for i in range(60))
    results = {}

    def first():
        results["first"] = post(api, "/v1/completions", {"model": "code", "prompt": slow, "max_tokens": 200})

    thread = threading.Thread(target=first)
    thread.start()
    wait_until(lambda: get_gateway().providers["embedded"].busy_threads == 1, timeout=60, interval=0.01)
    second = post(api, "/v1/completions", {"model": "code", "prompt": PREFIX + MIDDLE, "suffix": SUFFIX,
                                           "max_tokens": 16})
    thread.join(120)
    assert second.status_code == 200 and second.json()["keel"]["status"] in ("shown", "empty")
    assert results["first"].status_code == 200
    assert results["first"].json()["keel"]["status"] == "cancelled"
    assert wait_until(lambda: [r.status for r in rows(RequestLog, feature="completion")].count("cancelled") == 1,
                      timeout=10)


@pytest.mark.embedded_model
def test_a_non_streamed_infill_whose_client_hangs_up_is_cancelled(api):
    provider = get_gateway().providers["embedded"]
    provider.load()
    cold = "".join(f"def handler_{i}(event):\n    return event.get('k{i}')\n\n" for i in range(40))
    body = {**llama_vscode_body(200), "input_prefix": cold, "input_extra": []}
    with pytest.raises(httpx.ReadTimeout):  # llama.vim kills curl on the next keystroke
        httpx.post(api["url"] + "/infill", json=body, headers=api["headers"], timeout=0.4)
    wait_until(lambda: provider.busy_threads == 0, timeout=30, interval=0.02)
    assert wait_until(lambda: rows(CompletionEvent, status="cancelled"), timeout=10)
    assert [r.status for r in rows(RequestLog, feature="completion")] in ([], ["cancelled"])


@pytest.mark.embedded_model
def test_a_hard_budget_refusal_is_a_429(api):
    from core.llm import save_budgets, save_prices

    save_prices([{"model": "embedded/smollm2-135m-instruct", "input_per_mtok": 1000.0, "output_per_mtok": 1000.0}])
    save_budgets([{"scope": "customer", "key": "acme", "hard_usd": 0.0}])
    r = post(api, "/v1/completions", {"model": "code", "prompt": PREFIX + MIDDLE, "suffix": SUFFIX})
    assert r.status_code == 429 and r.json()["error"]["code"] == "budget_exceeded", r.text
    r = post(api, "/infill", llama_vscode_body())
    assert r.status_code == 429 and r.json()["error"]["code"] == 429
