"""`POST /api/complete` over a real uvicorn server, with the real embedded model where a model is needed:
streaming, the cache before the debounce, cancellation by a newer request and by a client that disconnects,
acceptance with speculation, bad input, and the telemetry and request-log rows that record all of it."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from sqlmodel import select

from core import auth, db
from core.completion import get_completion_service
from core.llm import get_gateway
from core.tables import CompletionEvent, RequestLog
from tests.conftest import wait_until
from tests.support import completion_api

pytestmark = pytest.mark.timeout(900)
server, api = completion_api.server, completion_api.api  # the shared fixtures

CODE = "def mean(values):\n    total = "
FILES = {"stats/util.py": "def clamp(x, lo, hi):\n    return max(lo, min(hi, x))\n"}


def body(text=CODE, cursor=None, **extra):
    payload = {"path": "stats/mean.py", "text": text, "cursor": len(text) if cursor is None else cursor,
               "files": FILES, "open": list(FILES), "session": "s1",
               "options": {"max_tokens": 12, "debounce_ms": 0, "idle_warm": False}}  # counts stay exact
    payload.update(extra)
    return payload


def events_of(response) -> list[dict]:
    return [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]


def post(api, payload, **kwargs):
    return httpx.post(api["url"] + "/api/complete", json=payload, headers=api["headers"], timeout=600, **kwargs)


def rows(table, **where):
    get_gateway().log.flush()
    get_completion_service().telemetry.flush()
    with db.session() as s:
        query = select(table)
        for name, value in where.items():
            query = query.where(getattr(table, name) == value)
        return list(s.exec(query))


# -- auth and bad input (no model needed) -------------------------------------------------------------


def test_requires_credentials(api):
    assert httpx.post(api["url"] + "/api/complete", json=body(), timeout=10).status_code == 401
    r = httpx.post(api["url"] + "/api/complete", json=body(), headers={"Authorization": "Bearer keel_sk_nope"},
                   timeout=10)
    assert r.status_code == 401 and "unknown API key" in r.json()["error"]


@pytest.mark.parametrize("payload, status, message", [
    (body("abc\x00\x01def", 3), 422, "binary"),
    (body("abc", 99), 422, "outside the file"),
    ({**body("abc\ndef"), "cursor": None, "line": 7, "col": 1}, 422, "line 7 is outside"),
    (body(cursor="3"), 400, "cursor"),
    ({"path": "a.py", "cursor": 0}, 400, "text"),
    (body(options={"debounce_ms": -5}), 400, "debounce_ms"),
    (body(files={"a.py": 3}), 400, "files"),
    ([1, 2], 400, "JSON object"),
])
def test_bad_input_gets_a_clear_error(api, payload, status, message):
    r = post(api, payload)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


def test_malformed_and_oversized_bodies_are_refused(api):
    r = httpx.post(api["url"] + "/api/complete", content=b"{not json", headers=api["headers"], timeout=10)
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    huge = json.dumps(body("x" * 4_100_000)).encode()
    r = httpx.post(api["url"] + "/api/complete", content=huge, headers=api["headers"], timeout=30)
    assert r.status_code == 413


def test_empty_file_answers_at_once_without_the_model(api):
    with httpx.stream("POST", api["url"] + "/api/complete", json=body("", 0), headers=api["headers"],
                      timeout=30) as r:
        events = events_of(r)
    done = events[-1]
    assert done["type"] == "done" and done["status"] == "empty" and "empty" in done["reason"]
    assert not get_gateway().providers["embedded"].loaded
    assert rows(CompletionEvent, status="empty")


# -- the embedded model -------------------------------------------------------------------------------


@pytest.mark.embedded_model
def test_streams_a_suggestion_then_serves_it_from_the_cache(api):
    with httpx.stream("POST", api["url"] + "/api/complete", json=body(), headers=api["headers"], timeout=600) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = events_of(r)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and "delta" in kinds
    done = events[-1]
    streamed = "".join(e["text"] for e in events if e["type"] == "delta")
    assert done["status"] == "shown" and done["completion"] and streamed.startswith(done["completion"][:1])
    assert "\n" not in done["completion"]  # "total = " ends mid-statement: one line
    assert done["source"] == "model" and not done["cached"] and done["template"] == "prefix-only"

    again = post(api, {**body(), "stream": False}).json()
    assert again["cached"] and again["source"] == "exact" and again["completion"] == done["completion"]
    assert again["latency_ms"] < 5

    logged = rows(RequestLog, feature="completion")
    assert len(logged) == 1 and logged[0].status == "ok" and logged[0].request_id == done["request_id"]
    assert logged[0].input_text.endswith(CODE)
    events_rows = rows(CompletionEvent)
    assert {(e.source, e.status) for e in events_rows} == {("model", "shown"), ("exact", "shown")}
    assert all(e.user and e.user.startswith("apikey:") for e in events_rows)


@pytest.mark.embedded_model
def test_a_1_mb_file_and_an_unknown_language_complete(api):
    big = "x = 1\n" * 170_000 + "def mean(values):\n    total = "
    r = post(api, {**body(big), "stream": False})
    assert r.status_code == 200 and r.json()["status"] in ("shown", "empty"), r.text
    r = post(api, {**body("Dear team, the meeting is on ", path="notes.unknownext"), "stream": False})
    assert r.status_code == 200 and r.json()["status"] in ("shown", "empty"), r.text
    logged = rows(RequestLog, feature="completion")
    assert len(logged) == 2, [(row.status, row.error) for row in logged]
    assert max(len(row.input_text) for row in logged) < 6000


@pytest.mark.embedded_model
def test_a_client_that_disconnects_mid_stream_cancels_the_generation(api):
    provider = get_gateway().providers["embedded"]
    provider.load()
    evaluated = provider.kv_stats()["tokens_evaluated"]
    cold = "".join(f"def handler_{i}(event):\n    return event.get('k{i}')\n\n" for i in range(40))
    with httpx.stream("POST", api["url"] + "/api/complete", json=body(cold, options={"max_tokens": 200,
                                                                                    "debounce_ms": 0}),
                      headers=api["headers"], timeout=60) as r:
        first = next(r.iter_lines())
        assert json.loads(first[6:])["type"] == "start"
        time.sleep(0.3)
    # the prompt (~420 tokens, seconds of evaluation) was cut off at a chunk boundary and the model freed
    wait_until(lambda: provider.busy_threads == 0, timeout=30, interval=0.02)
    assert provider.kv_stats()["tokens_evaluated"] - evaluated < 200
    # the suggestion is recorded as cancelled; a model call, if it had started (on a loaded machine the request may
    # still be queued when the client leaves, and then never reaches the model), is logged as cancelled too
    assert wait_until(lambda: rows(CompletionEvent, status="cancelled"), timeout=10)
    assert [r.status for r in rows(RequestLog, feature="completion")] in ([], ["cancelled"])
    ok = post(api, {**body(), "stream": False}).json()  # and serves the next request
    assert ok["status"] in ("shown", "empty")


@pytest.mark.embedded_model
def test_only_the_latest_request_of_a_session_survives(api):
    slow = "".join(f"value_{i} = compute({i})\n" for i in range(60))
    results = {}

    def first():
        with httpx.stream("POST", api["url"] + "/api/complete", headers=api["headers"], timeout=600,
                          json=body(slow, options={"max_tokens": 64, "debounce_ms": 0})) as r:
            results["first"] = events_of(r)[-1]

    thread = threading.Thread(target=first)
    thread.start()
    wait_until(lambda: get_gateway().providers["embedded"].busy_threads == 1, timeout=60, interval=0.01)
    results["second"] = post(api, {**body(), "stream": False}).json()
    thread.join(60)
    assert results["first"]["status"] == "cancelled"
    assert results["second"]["status"] in ("shown", "empty")
    stats = results["second"]["stats"]
    assert stats["cancelled"] >= 1 and stats["requests"] == 2


@pytest.mark.embedded_model
def test_accepting_starts_a_speculative_completion_for_the_next_state(api):
    done = post(api, {**body(), "stream": False}).json()
    assert done["status"] == "shown"
    accepted = post(api, {"accept": done["id"], "session": "s1"})
    assert accepted.status_code == 200 and accepted.json()["speculating"]
    text = CODE + done["completion"]
    nxt = post(api, {**body(text), "stream": False}).json()
    assert nxt["source"] in ("exact", "joined") and nxt["speculative_hit"]
    events = rows(CompletionEvent, suggestion_id=done["id"])
    assert events and events[0].accepted
    assert post(api, {"accept": "no-such-id", "session": "s1"}).status_code == 404


@pytest.mark.embedded_model
def test_a_file_open_warm_up_evaluates_the_prompt_so_the_first_pause_is_served_without_a_new_call(api):
    provider = get_gateway().providers["embedded"]
    provider.load()
    provider.kv_clear()
    warm = post(api, body(warm=True))
    assert warm.status_code == 200 and warm.json() == {"warming": True}
    wait_until(lambda: any(r.status == "ok" for r in rows(RequestLog, feature="completion")), timeout=300)
    warmed = provider.kv_stats()
    assert warmed["tokens_evaluated"] > 20  # the file's prompt went through the model...
    first = post(api, {**body(), "stream": False}).json()  # ...so the user's first pause in it
    assert first["status"] == "shown" and first["source"] == "model"
    after = provider.kv_stats()
    assert after["tokens_evaluated"] - warmed["tokens_evaluated"] <= 2  # re-evaluates only the last token
    assert after["tokens_reused"] - warmed["tokens_reused"] >= warmed["tokens_evaluated"] - 2
    logged = rows(RequestLog, feature="completion")
    assert len(logged) == 2 and min(r.tokens_out for r in logged) == 1  # the warm-up's call, logged like any other
    bad = post(api, {**body(warm=True), "cursor": -4})
    assert bad.status_code == 422 and "cursor" in bad.json()["error"]


@pytest.mark.embedded_model
def test_while_the_user_is_idle_the_other_open_file_is_warmed_so_switching_to_it_reuses_its_prompt(api):
    provider = get_gateway().providers["embedded"]
    provider.load()
    provider.kv_clear()
    other = "stats/util.py"
    options = {"max_tokens": 12, "debounce_ms": 0}  # idle warm-ups on, as the playground and editors leave them
    first = post(api, {**body(session="idle"), "options": options, "stream": False}).json()
    assert first["status"] in ("shown", "empty")
    # about IDLE_WARM_S later the session evaluates the open tab it has not seen: a second, one-token call (the
    # first request's row is already logged: it was answered before `post` returned)
    wait_until(lambda: len(rows(RequestLog, feature="completion")) >= 2, timeout=300)
    assert max(rows(RequestLog, feature="completion"), key=lambda r: r.created_at).tokens_out == 1
    warmed = provider.kv_stats()
    text = FILES[other] + "\ndef "
    switched = {"path": other, "text": text, "cursor": len(text), "files": {"stats/mean.py": CODE},
                "open": ["stats/mean.py"], "session": "idle", "options": options, "stream": False}
    answer = post(api, switched).json()
    assert answer["source"] == "model" and answer["status"] in ("shown", "empty")
    after = provider.kv_stats()
    # only what was typed after the warm-up is evaluated: the context and the file's text were already in the KV
    assert after["tokens_evaluated"] - warmed["tokens_evaluated"] <= 6
    assert after["tokens_reused"] - warmed["tokens_reused"] >= 20


def test_a_revoked_api_key_stops_working_within_the_auth_cache_ttl(api):
    r = post(api, {**body("", 0), "stream": False})
    assert r.status_code == 200 and r.json()["status"] == "empty"
    record = [k for k in auth.list_api_keys("acme") if k.name == "completion tests"][0]
    assert auth.revoke_api_key(record.id)
    time.sleep(2.1)
    r = post(api, {**body("", 0), "stream": False})
    assert r.status_code == 401 and "revoked" in r.json()["error"]
