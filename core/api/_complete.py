"""`POST /api/complete`: code completion for editor plugins and the playground, streamed as server-sent events.

Auth: `Authorization: Bearer <API key or ID token>` like every /api route, or — for the playground on the same
origin — the signed-in Streamlit session cookie, read by an authenticator the UI layer registers (core imports
no UI code). Cookie requests must be JSON from this origin, so another site cannot post on a user's behalf.

Body: {"path", "text", "cursor" | "line"+"col", "files": {path: text}, "open": [paths], "recent": [paths],
"language", "session", "stream": true, "options": {"debounce_ms", "cache", "cancel_previous", "speculate",
"predict_pause", "idle_warm", "start_when_idle", "max_tokens", "time_cap_ms"}}; or {"accept": suggestion_id, "session", "text"?} after the user took one;
or the editor state with "warm": true when a file is opened or focused (answers {"warming": bool} at once).
Stream events: {"type": "start"}, {"type": "delta", "text"}, {"type": "done", "completion", "latency_ms",
"cached", ...}. A client that disconnects cancels its generation at once.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import TypeGuard
from urllib.parse import urlsplit

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from core.api._http import BodyError, error_headers, parse_json_object, read_body
from core.auth import AuthError, Principal, billing_customer, principal_from_bearer
from core.completion import (
    CompletionInputError,
    CompletionOptions,
    EditorState,
    get_completion_service,
    offset_of,
)

MAX_COMPLETE_BODY_BYTES = 4_000_000  # a 1 MB file plus a few open tabs, JSON-escaped
_cookie_authenticators: list[Callable[[Request], Principal | None]] = []


def register_cookie_authenticator(authenticate: Callable[[Request], Principal | None]) -> None:
    """The UI layer tells the API how to read its session cookie (ui.playground does, at mount time)."""
    if authenticate not in _cookie_authenticators:
        _cookie_authenticators.append(authenticate)


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin:
        return True  # same-origin fetches of non-GET requests send Origin; tools such as curl do not
    return urlsplit(origin).netloc == request.headers.get("host", "")


_BEARER_TTL_S = 2.0
_bearer_cache: dict[str, tuple[float, Principal]] = {}


def _cached_bearer(authorization: str | None) -> Principal | None:
    """A bearer checked in the last 2 s: an editor sends one request per keystroke, and a cache hit should not
    wait for an API-key lookup in SQL. A revoked key stops working within those 2 s."""
    if not authorization:
        return None
    found = _bearer_cache.get(hashlib.sha256(authorization.encode()).hexdigest())
    if found is not None and time.monotonic() - found[0] < _BEARER_TTL_S:
        return found[1]
    return None


def _principal(request: Request) -> Principal:
    authorization = request.headers.get("authorization")
    if authorization:
        principal = principal_from_bearer(authorization)
        if len(_bearer_cache) > 1000:
            _bearer_cache.clear()
        _bearer_cache[hashlib.sha256(authorization.encode()).hexdigest()] = (time.monotonic(), principal)
        return principal
    for authenticate in _cookie_authenticators:
        signed_in = authenticate(request)
        if signed_in is not None:
            if not request.headers.get("content-type", "").startswith("application/json"):
                raise AuthError("cookie-authenticated requests must send Content-Type: application/json")
            if not _same_origin(request):
                raise AuthError("cookie-authenticated requests must come from this origin")
            return signed_in
    return principal_from_bearer(authorization)  # raises the usual "missing credentials" error


def _str_list(value, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"'{name}' must be a list of paths")
    return tuple(value[:64])


def _integer(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_request(body: dict) -> tuple[EditorState, CompletionOptions, bool]:
    """The editor state, options and whether to stream; ValueError names the bad field."""
    text = body.get("text")
    if not isinstance(text, str):
        raise ValueError("'text' must be the whole file as a string")
    path = body.get("path")
    if not isinstance(path, str) or not path.strip():
        raise ValueError("'path' must be a non-empty string")
    cursor = body.get("cursor")
    if cursor is None and "line" in body:
        line, col = body.get("line"), body.get("col", 1)
        if not (_integer(line) and _integer(col)):
            raise ValueError("'line' and 'col' must be integers (1-based)")
        cursor = offset_of(text, line, col)
    if isinstance(cursor, bool) or not isinstance(cursor, int):
        raise ValueError("'cursor' must be an integer character offset (or send 'line' and 'col')")
    files = body.get("files") or {}
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise ValueError("'files' must map paths to file text")
    raw = body.get("options") or {}
    if not isinstance(raw, dict):
        raise ValueError("'options' must be an object")
    options = CompletionOptions()
    if raw.get("debounce_ms") is not None:
        value = raw["debounce_ms"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 2000:
            raise ValueError("'options.debounce_ms' must be a number from 0 to 2000, or null for adaptive")
        options.debounce_ms = float(value)
    for field, attr in (("cache", "use_cache"), ("cancel_previous", "cancel_previous"), ("speculate", "speculate"),
                        ("predict_pause", "predict_pause"), ("idle_warm", "idle_warm"),
                        ("start_when_idle", "start_when_idle")):
        if field in raw:
            if not isinstance(raw[field], bool):
                raise ValueError(f"'options.{field}' must be true or false")
            setattr(options, attr, raw[field])
    if "max_tokens" in raw:
        value = raw["max_tokens"]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 256:
            raise ValueError("'options.max_tokens' must be an integer from 1 to 256")
        options.max_tokens = value
    if "time_cap_ms" in raw:
        value = raw["time_cap_ms"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 50 <= value <= 10_000:
            raise ValueError("'options.time_cap_ms' must be a number from 50 to 10000")
        options.time_cap_ms = float(value)
    state = EditorState(path=path, text=text, cursor=cursor, files=dict(list(files.items())[:64]),
                        open_paths=_str_list(body.get("open"), "open"),
                        recent_paths=_str_list(body.get("recent"), "recent"),
                        language=body.get("language") if isinstance(body.get("language"), str) else None)
    return state, options, bool(body.get("stream", True))


def _sse(payload: dict) -> str:
    return f"data: {json.dumps(payload)}\n\n"


class _CompletionStreamResponse(StreamingResponse):
    """Streams a ticket's events; when the client goes away the ticket is cancelled at once (the model stops
    between tokens or prompt chunks), whatever ASGI version the server speaks."""

    def __init__(self, events, ticket, **kwargs):
        super().__init__(events, **kwargs)
        self._events, self._ticket = events, ticket

    async def __call__(self, scope, receive, send):
        async def watch_disconnect() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    self._ticket.cancel()
                    return

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(watch_disconnect)
                try:
                    await self.stream_response(send)
                except OSError:
                    self._ticket.cancel()
                finally:
                    group.cancel_scope.cancel()
        finally:
            self._ticket.cancel()  # no-op when it already finished; frees the model when it did not
            await run_in_threadpool(self._close)

    def _close(self) -> None:
        for _ in range(300):
            try:
                self._events.close()
                return
            except ValueError:  # still running in a worker thread: cancelled, it stops at the next token
                time.sleep(0.01)


async def api_complete(request: Request):
    try:
        principal = _cached_bearer(request.headers.get("authorization"))
        if principal is None:
            principal = await run_in_threadpool(_principal, request)
    except AuthError as exc:
        return JSONResponse({"error": str(exc)}, status_code=401)
    try:
        body = parse_json_object(await read_body(request, MAX_COMPLETE_BODY_BYTES))
    except BodyError as exc:
        return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=error_headers(exc))
    except ClientDisconnect:  # the editor gave up on this keystroke before sending all of it
        return Response(status_code=499)
    session_id = given if isinstance(given := body.get("session"), str) else "default"
    session = get_completion_service().session(principal.sub, session_id, billing_customer(principal))
    if body.get("stats") is True:
        return JSONResponse({"stats": session.stats.as_dict()})
    if "accept" in body:
        suggestion_id, text = body.get("accept"), body.get("text")
        if not isinstance(suggestion_id, str) or (text is not None and not isinstance(text, str)):
            return JSONResponse({"error": "'accept' must be a suggestion id and 'text' a string"}, status_code=400)
        result = await run_in_threadpool(session.accept, suggestion_id, text)
        result["stats"] = session.stats.as_dict()
        return JSONResponse(result, status_code=200 if result["accepted"] else 404)
    try:
        state, options, stream = parse_request(body)
        if body.get("warm") is True:  # the editor opened or switched to this file: evaluate its prompt now
            return JSONResponse(session.warm(state, options))
        # in the event loop: validation, windows and hashes take well under a millisecond, and a cache hit must
        # not wait for a worker thread (under load each hop can cost a GIL switch interval, 5 ms)
        ticket = session.open(state, options)
    except (CompletionInputError, ValueError) as exc:
        status = 413 if "limit is" in str(exc) else 422 if isinstance(exc, CompletionInputError) else 400
        return JSONResponse({"error": str(exc)}, status_code=status)
    if not stream:
        def run() -> dict:
            done: dict = {}
            for event in ticket.events():
                if event.kind == "done" and event.data is not None:
                    done = event.data
            return done
        if ticket.cached_text is not None or ticket.empty_reason:
            return JSONResponse(run())
        return JSONResponse(await run_in_threadpool(run))

    events_iter = ticket.events()
    if ticket.cached_text is not None or ticket.empty_reason:
        async def immediate():  # nothing to wait for: no worker thread at all
            for event in events_iter:
                if event.kind == "delta":
                    yield _sse({"type": "delta", "text": event.text})
                else:
                    yield _sse({"type": event.kind, **(event.data or {})})

        return StreamingResponse(immediate(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Keel-Suggestion-Id": ticket.id})

    def events():
        try:
            for event in events_iter:
                if event.kind == "delta":
                    yield _sse({"type": "delta", "text": event.text})
                else:
                    yield _sse({"type": event.kind, **(event.data or {})})
        finally:
            events_iter.close()  # a disconnect lands here: the ticket records "cancelled" and frees the model

    body_iter = events()
    return _CompletionStreamResponse(body_iter, ticket, media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Keel-Suggestion-Id": ticket.id})
