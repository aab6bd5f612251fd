"""Request bodies on every JSON route go through one bounded reader and one parser (issue 13, items 6 and 7), over
a real uvicorn: a chunked body larger than the limit on `/api/search` is refused with 413 without being buffered,
and malformed JSON (30,000 nested brackets, a 5,001-digit number, a lone surrogate) is a 400 with a clear message
on `/api/search`, `/api/complete` and `/v1/chat/completions`, never a 500 (SQLite and PostgreSQL behind the routes)."""

from __future__ import annotations

import os
import time

import httpx
import psutil
import pytest

from core.review._repo import run_sync
from starlette.applications import Starlette
from starlette.requests import Request

from core import auth, config
from core.api._http import BodyError, read_body
from core.api._routes import routes
from core.api._search import MAX_SEARCH_BODY_BYTES
from core.idp import DevIdentityProvider
from core.llm import set_gateway
from tests.conftest import free_port
from tests.support.live_server import LiveServer
from tests.support.oidc import id_token_for

pytestmark = pytest.mark.timeout(300)
INTERN = "milo.intern@keel.dev"
DEEP = b"[" * 30_000 + b"]" * 30_000
HUGE_INT = b"9" * 5_001


@pytest.fixture(scope="module")
def idp():
    provider = DevIdentityProvider(port=free_port()).start()
    try:
        yield provider
    finally:
        provider.stop()


@pytest.fixture(scope="module")
def server():
    with LiveServer(Starlette(routes=routes)) as live:
        yield live


@pytest.fixture
def api(idp, server, database, monkeypatch):
    monkeypatch.setenv("KEEL_DEV_IDP_PORT", str(idp.port))
    config.reset_settings()
    auth._jwks.cache_clear()
    old = set_gateway(None)
    if old is not None:
        old.log.close()
    auth.ensure_workspace("bodies", "Bodies", plan="pro")
    key, _ = auth.create_api_key("bodies", "body tests")
    token = id_token_for(f"http://localhost:{idp.port}", INTERN)
    yield {"url": server.url, "search": {"Authorization": f"Bearer {token}"}, "key": {"Authorization": f"Bearer {key}"}}
    auth._jwks.cache_clear()


def post(api, route: str, content: bytes) -> httpx.Response:
    headers = api["search"] if route == "/api/search" else api["key"]
    return httpx.post(f"{api['url']}{route}", content=content, timeout=60,
                      headers={**headers, "Content-Type": "application/json"})


def error_text(response: httpx.Response) -> str:
    error = response.json()["error"]
    return error["message"] if isinstance(error, dict) else error


# route, raw body, fragment of the 400's message
MALFORMED = [
    ("/api/search", DEEP, "nested deeper than"),
    ("/api/search", b'{"question": ' + DEEP + b"}", "nested deeper than"),
    ("/api/search", b'{"question": "pto", "k": ' + HUGE_INT + b"}", "a number with 5,001 characters"),
    ("/api/search", b'{"question": "pay\\ud800day"}', "lone surrogate"),
    ("/api/search", b'{"question": "payday", "\\udfff": 1}', "lone surrogate"),
    ("/api/search", b'{"question": "\xff\xfe"}', "not UTF-8"),
    ("/api/complete", DEEP, "nested deeper than"),
    ("/api/complete", b'{"path": "a.py", "text": "x = ", "cursor": ' + HUGE_INT + b"}", "a number with 5,001"),
    ("/api/complete", b'{"path": "a.py", "text": "x = \\ud83d", "cursor": 4}', "lone surrogate"),
    ("/v1/chat/completions", DEEP, "nested deeper than"),
    ("/v1/chat/completions", b'{"model": "capable", "max_tokens": ' + HUGE_INT + b"}", "a number with 5,001"),
]


@pytest.mark.parametrize("route, body, fragment", MALFORMED,
                         ids=[f"{r}-{f.split()[0]}-{i}" for i, (r, _, f) in enumerate(MALFORMED)])
def test_malformed_json_is_a_clear_400_on_every_route(api, route, body, fragment):
    response = post(api, route, body)
    assert response.status_code == 400, response.text[:300]
    assert fragment in error_text(response)
    assert len(response.content) < 2_000  # the error names the problem without echoing the body


def test_the_server_still_answers_after_malformed_bodies(api):
    for route, body, _ in MALFORMED:
        post(api, route, body)
    response = post(api, "/api/search", b'{"question": "", "answer": false}')
    assert response.status_code == 400 and "type a question" in error_text(response)


def _chunks(total: int, sent: list[int], size: int = 256 * 1024):
    yield b'{"question": "'
    while sent[0] < total:
        sent[0] += size
        yield b"a" * size


def test_a_chunked_search_body_over_the_limit_is_refused_without_buffering_it(api):
    assert post(api, "/api/search", b'{"question": ""}').status_code == 400  # warm up: the route's imports
    process = psutil.Process(os.getpid())  # the server runs in this process (a uvicorn thread)
    before = process.memory_info().rss
    sent = [0]
    started = time.perf_counter()
    try:
        response = httpx.post(f"{api['url']}/api/search", content=_chunks(50_000_000, sent), timeout=60,
                              headers={**api["search"], "Content-Type": "application/json"})
        status = response.status_code
    except (httpx.WriteError, httpx.RemoteProtocolError):
        status = None  # the server hung up without a response
    elapsed = time.perf_counter() - started
    grown_mb = (process.memory_info().rss - before) / 1e6
    print(f"chunked 50 MB to /api/search: status {status}, client sent {sent[0] / 1e6:.1f} MB, "
          f"{elapsed:.2f} s, server RSS +{grown_mb:.1f} MB")
    assert status == 413
    assert sent[0] < 20_000_000, "the server kept reading long after the limit"
    assert grown_mb < 20


def test_the_reader_stops_pulling_chunks_past_the_limit():
    """The route's reader itself: a 50 MB stream of 64 kB chunks is abandoned after limit + one chunk."""
    pulled = 0

    async def receive():
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * 65536, "more_body": pulled < 800}

    request = Request({"type": "http", "method": "POST", "headers": []}, receive)
    with pytest.raises(BodyError) as error:
        run_sync(read_body(request, MAX_SEARCH_BODY_BYTES))  # also when e2e tests left a loop running
    assert error.value.status == 413 and "larger than 100,000 bytes" in str(error.value)
    assert pulled == MAX_SEARCH_BODY_BYTES // 65536 + 1
