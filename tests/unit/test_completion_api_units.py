"""How /api/complete decides who is calling (bearer first, then the playground's cookie, same origin and JSON
only) and how it reads a body; no server, Starlette request objects built by hand."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from core.api import _complete
from core.api._complete import parse_request, register_cookie_authenticator
from core.auth import AuthError, Principal

ALICE = Principal(sub="alice", name="Alice", groups=frozenset({"engineering"}))


def request(headers: dict) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "POST", "path": "/api/complete", "headers": raw})


@pytest.fixture
def cookie_user():
    def authenticate(req):
        return ALICE if "session=ok" in req.headers.get("cookie", "") else None

    register_cookie_authenticator(authenticate)
    yield
    _complete._cookie_authenticators.remove(authenticate)


def test_cookie_session_from_the_same_origin_with_json(cookie_user):
    req = request({"cookie": "session=ok", "content-type": "application/json", "origin": "http://keel:8501",
                   "host": "keel:8501"})
    assert _complete._principal(req) is ALICE


@pytest.mark.parametrize("headers, message", [
    ({"cookie": "session=ok", "content-type": "text/plain", "host": "keel"}, "application/json"),
    ({"cookie": "session=ok", "content-type": "application/json", "origin": "https://evil.example",
      "host": "keel:8501"}, "this origin"),
    ({"cookie": "session=bad", "content-type": "application/json", "host": "keel"}, "missing credentials"),
    ({"content-type": "application/json"}, "missing credentials"),
])
def test_cookie_requests_from_elsewhere_or_not_json_are_refused(cookie_user, headers, message):
    with pytest.raises(AuthError, match=message):
        _complete._principal(request(headers))


def test_a_bearer_header_is_checked_even_when_a_cookie_is_present(cookie_user):
    req = request({"authorization": "Bearer not-a-key", "cookie": "session=ok", "content-type": "application/json"})
    with pytest.raises(AuthError):
        _complete._principal(req)


def test_parse_request_reads_line_and_column_and_options():
    state, options, stream = parse_request({"path": "a.py", "text": "ab\ncd", "line": 2, "col": 2,
                                            "options": {"debounce_ms": 0, "cache": False, "max_tokens": 9,
                                                        "idle_warm": False, "start_when_idle": False},
                                            "stream": False, "files": {"b.py": "x"}, "open": ["b.py"]})
    assert state.cursor == 4 and not stream
    assert options.debounce_ms == 0 and options.use_cache is False and options.max_tokens == 9
    assert options.idle_warm is False and options.start_when_idle is False
    assert parse_request({"path": "a.py", "text": "x", "cursor": 0})[1].start_when_idle is True


@pytest.mark.parametrize("body, message", [
    ({"path": "a.py", "text": "x", "cursor": 0, "options": {"cache": "yes"}}, "cache"),
    ({"path": "a.py", "text": "x", "cursor": 0, "options": {"idle_warm": "1; DROP TABLE"}}, "idle_warm"),
    ({"path": "a.py", "text": "x", "cursor": 0, "options": {"start_when_idle": 1}}, "start_when_idle"),
    ({"path": "a.py", "text": "x", "cursor": 0, "options": {"max_tokens": 10_000}}, "max_tokens"),
    ({"path": "a.py", "text": "x", "cursor": 0, "open": "b.py"}, "open"),
    ({"path": "", "text": "x", "cursor": 0}, "path"),
    ({"path": "a.py", "text": "x", "cursor": True}, "cursor"),
    ({"path": "a.py", "text": "x", "line": True, "col": 1}, "'line' and 'col' must be integers"),
    ({"path": "a.py", "text": "x", "line": 1, "col": "1"}, "'line' and 'col' must be integers"),
])
def test_parse_request_names_the_bad_field(body, message):
    with pytest.raises(ValueError, match=message):
        parse_request(body)
