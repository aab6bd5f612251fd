"""Fill-in-the-middle for editors that already speak a protocol, served by Keel's completion engine.

- `POST /infill`: llama.cpp server's request and response shape, what llama.vscode and llama.vim send
  (`input_prefix`, `prompt`, `input_suffix`, `input_extra` chunks of other files, `n_predict`,
  `t_max_predict_ms`, `stream`, `response_fields`, ...).
- `POST /v1/completions` (and `/v1/fim/completions`, the path Continue's OpenAI provider posts FIM to):
  OpenAI's legacy completions with `suffix`, streamed as server-sent events ending in `data: [DONE]` or not.

Both go through the same `CompletionSession` as `/api/complete`: cache and typed-ahead reuse before any
debounce, cancellation of the previous request of the same editor session (and of a request whose client hangs
up), KV state kept per file, the gateway's logging (feature `completion`), budgets and workspace API keys.
Neither protocol names the file being edited, so the file (and so the KV slot and cache) comes from the Keel
extension `filename` in the body or the `X-Keel-Filename` header, else one default file per protocol; the editor
session from `X-Keel-Session` (default: one per protocol and API key).

Sampler settings (`temperature`, `top_k`, `top_p`, `samplers`, penalties, `cache_prompt`, `n_indent`, `id_slot`,
`t_max_prompt_ms`) are accepted and ignored: the engine decodes greedily and keeps the prompt cache itself.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from enum import StrEnum

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from core.api import _complete
from core.api._complete import _cached_bearer, _CompletionStreamResponse
from core.api._http import BodyError, error_headers, parse_json_object, read_body
from core.auth import AuthError, Principal, billing_customer, principal_from_bearer
from core.completion import (
    CompletionInputError,
    CompletionOptions,
    EditorState,
    get_completion_service,
)
from core.completion._types import MAX_FILE_CHARS
from core.errors import KeelError

MAX_FIM_BODY_BYTES = 4_000_000  # a 1 MB file plus a few context chunks, JSON-escaped
MAX_PREDICT = 256  # the engine's ceiling; a larger n_predict / max_tokens is served up to this
MAX_STOP_STRINGS = 16
MAX_EXTRA_CHUNKS = 64
DEFAULT_FILENAME = {"infill": "untitled", "openai": "untitled"}


class Protocol(StrEnum):
    INFILL = "infill"
    OPENAI = "openai"


class FimInputError(KeelError, ValueError):
    """The body is not a request this protocol accepts; the message names the field. `status` 400 or 413."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class FimRequest:
    state: EditorState
    options: CompletionOptions
    stream: bool
    n_predict: int
    stop: list[str] = field(default_factory=list)
    model: str = "code"
    response_fields: list[str] | None = None
    include_usage: bool = False


# -- parsing ----------------------------------------------------------------------------------------------


def _string(body: dict, name: str, *, required: bool = False, allow_null: bool = True) -> str:
    value = body.get(name)
    if value is None:
        if required:
            raise FimInputError(f"'{name}' is required and must be a string")
        if name in body and not allow_null:
            raise FimInputError(f"'{name}' must be a string, not null")
        return ""
    if not isinstance(value, str):
        raise FimInputError(f"'{name}' must be a string, not {type(value).__name__}")
    return value


def _integer(body: dict, name: str, default: int) -> int:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise FimInputError(f"'{name}' must be an integer, not {type(value).__name__}")
    if value < 0:
        raise FimInputError(f"'{name}' must be 0 or more (got {value}); Keel serves at most {MAX_PREDICT} tokens")
    return value


def _stop_strings(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise FimInputError("'stop' must be a string or a list of strings")
    if len(value) > MAX_STOP_STRINGS:
        raise FimInputError(f"'stop' has {len(value)} strings; at most {MAX_STOP_STRINGS}")
    return [s for s in value if s]


def _bool(body: dict, name: str, default: bool) -> bool:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise FimInputError(f"'{name}' must be true or false")
    return value


def _number(body: dict, name: str, low: float, high: float) -> None:
    """Validated and then ignored (the engine decodes greedily), so a typo is still a clear 400."""
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise FimInputError(f"'{name}' must be a number from {low:g} to {high:g}")


def _filename(request: Request, body: dict, protocol: Protocol) -> str:
    name = body.get("filename", body.get("path"))
    if name is not None and not isinstance(name, str):
        raise FimInputError("'filename' must be a string (the path of the file being edited)")
    name = name or request.headers.get("x-keel-filename") or DEFAULT_FILENAME[protocol]
    return name


def _options(n_predict: int, time_cap_ms: float | None, protocol: Protocol) -> CompletionOptions:
    # No idle warm-ups: these clients send chunks of other files, not whole files, and llama.vscode and llama.vim
    # send their own warm-up (n_predict 0) when the user enters a file.
    options = CompletionOptions(client=str(protocol), idle_warm=False)
    options.max_tokens = max(1, min(n_predict, MAX_PREDICT))
    if time_cap_ms is not None:
        options.time_cap_ms = float(min(max(time_cap_ms, 50.0), 10_000.0))
    return options


def _check_size(text: str) -> None:
    if len(text) > MAX_FILE_CHARS:
        raise FimInputError(f"the text around the cursor is {len(text):,} characters; the limit is "
                            f"{MAX_FILE_CHARS:,}", 413)


def parse_infill(body: dict, request: Request) -> FimRequest:
    """llama.cpp `/infill`: the file is input_prefix + prompt + input_suffix with the cursor after `prompt`."""
    prefix = _string(body, "input_prefix")
    middle = _string(body, "prompt")
    suffix = _string(body, "input_suffix")
    if not any(k in body for k in ("input_prefix", "input_suffix", "prompt", "input_extra")):
        raise FimInputError("an /infill request needs 'input_prefix' and 'input_suffix' (and optionally 'prompt', "
                            "the start of the current line, and 'input_extra')")
    extra = body.get("input_extra")
    files: dict[str, str] = {}
    if extra is not None:
        if not isinstance(extra, list):
            raise FimInputError("'input_extra' must be a list of {\"filename\", \"text\"} chunks")
        if len(extra) > MAX_EXTRA_CHUNKS:
            raise FimInputError(f"'input_extra' has {len(extra)} chunks; at most {MAX_EXTRA_CHUNKS}")
        for i, chunk in enumerate(extra):
            if not isinstance(chunk, dict) or not isinstance(chunk.get("text"), str):
                raise FimInputError(f"input_extra[{i}] must be an object with a string 'text'")
            filename = chunk.get("filename")
            if filename is not None and not isinstance(filename, str):
                raise FimInputError(f"input_extra[{i}].filename must be a string")
            name = (filename or "").strip() or f"extra-{i}"
            files[name] = files[name] + "\n" + chunk["text"] if name in files else chunk["text"]
    n_predict = _integer(body, "n_predict", 48)
    for name in ("t_max_predict_ms", "t_max_prompt_ms"):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise FimInputError(f"'{name}' must be a number of milliseconds (0 or more)")
    _number(body, "temperature", 0.0, 5.0)
    fields = body.get("response_fields")
    if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
        raise FimInputError("'response_fields' must be a list of field names such as \"timings/prompt_n\"")
    text = prefix + middle + suffix
    _check_size(text)
    path = _filename(request, body, Protocol.INFILL)
    t_max = body.get("t_max_predict_ms")
    options = _options(n_predict, t_max if t_max else None, Protocol.INFILL)
    state = EditorState(path=path, text=text, cursor=len(prefix) + len(middle), files=files,
                        open_paths=tuple(files), recent_paths=tuple(reversed(list(files)))[:4])
    return FimRequest(state=state, options=options, stream=_bool(body, "stream", False), n_predict=n_predict,
                      stop=_stop_strings(body.get("stop")), response_fields=fields or None)


def parse_openai(body: dict, request: Request, known_models: list[str], code_models: set[str]) -> FimRequest:
    """OpenAI completions: `prompt` is the text before the cursor, `suffix` the text after it."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise FimInputError("'model' is required: 'code' (the completion tier)")
    if model not in known_models:
        raise FimInputError(f"unknown model {model!r}; GET /v1/models lists the choices")
    if model not in code_models:
        raise FimInputError(f"completions are served by the code tier: use model 'code' (not {model!r})")
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise FimInputError("'prompt' is required: the text before the cursor, as one string")
    suffix = _string(body, "suffix")
    max_tokens = _integer(body, "max_tokens", 48)
    n = body.get("n", 1)
    if n not in (1, None) or isinstance(n, bool):
        raise FimInputError("'n' must be 1: Keel returns one completion per request")
    if body.get("echo") not in (None, False):
        raise FimInputError("'echo' is not supported")
    _number(body, "temperature", 0.0, 2.0)
    _number(body, "top_p", 0.0, 1.0)
    for name in ("frequency_penalty", "presence_penalty"):
        _number(body, name, -2.0, 2.0)
    stream_options = body.get("stream_options")
    if stream_options is not None and not isinstance(stream_options, dict):
        raise FimInputError("'stream_options' must be an object")
    text = prompt + suffix
    _check_size(text)
    path = _filename(request, body, Protocol.OPENAI)
    options = _options(max_tokens, None, Protocol.OPENAI)
    state = EditorState(path=path, text=text, cursor=len(prompt))
    return FimRequest(state=state, options=options, stream=_bool(body, "stream", False), n_predict=max_tokens,
                      stop=_stop_strings(body.get("stop")), model=model,
                      include_usage=bool((stream_options or {}).get("include_usage")))


# -- running ----------------------------------------------------------------------------------------------


class _StopScanner:
    """The client's own stop strings, applied to the streamed text: nothing at or after a stop string is sent,
    and text that could be the start of one is held back until it is clear."""

    def __init__(self, stops: list[str]):
        self.stops = stops
        self.text = ""
        self.sent = 0
        self.stopped = False

    def feed(self, delta: str) -> str:
        self.text += delta
        hits = [i for i in (self.text.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.text, self.stopped = self.text[: min(hits)], True
            return self._flush()
        hold = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(self.text)), 0, -1):
                if self.text.endswith(stop[:size]):
                    hold = max(hold, size)
                    break
        out = self.text[self.sent: len(self.text) - hold]
        self.sent += len(out)
        return out

    def _flush(self) -> str:
        out = self.text[self.sent:]
        self.sent = len(self.text)
        return out

    def final(self, completion: str) -> str:
        """The whole answer: the engine's final text, cut at the first stop string."""
        hits = [i for i in (completion.find(s) for s in self.stops) if i >= 0]
        return completion[: min(hits)] if hits else completion


def _events(ticket, scanner: _StopScanner) -> Generator[tuple[str, str | dict], None, None]:
    """("delta", text) ... then ("done", outcome dict), with the client's stop strings applied."""
    events = ticket.events()
    try:
        for event in events:
            if event.kind == "delta":
                piece = scanner.feed(event.text)
                if piece:
                    yield "delta", piece
                if scanner.stopped:
                    ticket.cancel()  # the client's stop string: the model is not needed any more
            elif event.kind == "done":
                data = dict(event.data or {})
                if scanner.stopped or scanner.stops:
                    data["completion"] = scanner.final(data.get("completion") or scanner.text)
                    if scanner.stopped:
                        data["stopped_word"] = True
                        if data.get("status") == "cancelled":
                            data["status"] = "shown" if data["completion"] else "empty"
                rest = scanner._flush() if not scanner.stopped else ""
                if rest:
                    yield "delta", rest
                yield "done", data
    finally:
        events.close()


def _collect(ticket, scanner: _StopScanner) -> dict:
    done: dict = {}
    for kind, value in _events(ticket, scanner):
        if kind == "done" and isinstance(value, dict):  # "done" always carries the outcome dict
            done = value
    return done


async def _run_to_end(request: Request, ticket, scanner: _StopScanner) -> dict:
    """A non-streamed answer: run in a worker thread; a client that hangs up (llama.vim kills its curl on the next
    keystroke) cancels the generation at once."""
    if ticket.cached_text is not None or ticket.empty_reason:
        return _collect(ticket, scanner)  # nothing to wait for: no worker thread

    async def watch_disconnect() -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                ticket.cancel()
                return

    result: dict = {}
    async with anyio.create_task_group() as group:
        group.start_soon(watch_disconnect)
        try:
            result = await run_in_threadpool(_collect, ticket, scanner)
        finally:
            group.cancel_scope.cancel()
    return result


# -- protocol shapes --------------------------------------------------------------------------------------


def _llama_error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"code": status, "message": message, "type": kind}}, status_code=status)


def _openai_error(status: int, message: str, kind: str, code: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": code}},
                        status_code=status)


def _error_kind(status: int) -> str:
    return {400: "invalid_request_error", 401: "authentication_error", 413: "invalid_request_error",
            429: "insufficient_quota"}.get(status, "server_error")


def _failure_status(done: dict) -> int | None:
    """The HTTP status for a generation that failed, None when it did not."""
    from core.llm import RequestStatus

    if done.get("status") != "error":
        return None
    return 429 if done.get("error_status") == RequestStatus.BUDGET_REFUSED else 502


def _timings(done: dict, started: float) -> dict:
    prompt_n = int(done.get("tokens_in") or 0)
    predicted_n = int(done.get("tokens_out") or 0)
    model_ms = float(done.get("model_ms") or 0.0)
    prompt_ms = float(done.get("first_token_ms") or (model_ms if not predicted_n else 0.0))
    predicted_ms = max(0.0, model_ms - prompt_ms)
    return {
        "prompt_n": prompt_n, "prompt_ms": round(prompt_ms, 3),
        "prompt_per_token_ms": round(prompt_ms / prompt_n, 3) if prompt_n else 0.0,
        "prompt_per_second": round(prompt_n * 1000.0 / prompt_ms, 3) if prompt_ms else 0.0,
        "predicted_n": predicted_n, "predicted_ms": round(predicted_ms, 3),
        "predicted_per_token_ms": round(predicted_ms / predicted_n, 3) if predicted_n else 0.0,
        "predicted_per_second": round(predicted_n * 1000.0 / predicted_ms, 3) if predicted_ms else 0.0,
        "total_ms": round((time.perf_counter() - started) * 1000.0, 3),
    }


def _stop_type(done: dict, fim: FimRequest) -> str:
    if done.get("stopped_word"):
        return "word"
    if int(done.get("tokens_out") or 0) >= fim.options.max_tokens:
        return "limit"
    return "eos"


def _infill_final(done: dict, fim: FimRequest, started: float, model: str) -> dict:
    content = done.get("completion") or ""
    stop_type = _stop_type(done, fim)
    body: dict[str, object] = {
        "index": 0, "content": content, "tokens": [], "id_slot": 0, "stop": True, "model": model,
        "tokens_predicted": int(done.get("tokens_out") or 0), "tokens_evaluated": int(done.get("tokens_in") or 0),
        "generation_settings": {"n_predict": fim.n_predict, "temperature": 0.0, "stream": fim.stream,
                                "t_max_predict_ms": fim.options.time_cap_ms},
        "prompt": "", "has_new_line": "\n" in content, "truncated": False, "stop_type": stop_type,
        "stopped_eos": stop_type == "eos", "stopped_word": stop_type == "word", "stopped_limit": stop_type == "limit",
        "stopping_word": "", "tokens_cached": 0, "timings": _timings(done, started),
        "keel": {k: done.get(k) for k in ("id", "status", "source", "cached", "latency_ms", "request_id", "error")},
    }
    body["tokens_cached"] = body["tokens_evaluated"]
    if fim.response_fields:
        return _pick_fields(body, fim.response_fields)
    return body


def _pick_fields(body: dict, fields: list[str]) -> dict:
    """llama.cpp's `response_fields`: only the named fields, a nested one under its slash path as the key
    (llama.vim reads `timings/prompt_n` from the top level)."""
    out = {}
    for name in fields:
        value: object = body
        for part in name.split("/"):
            value = value.get(part) if isinstance(value, dict) else None
            if value is None:
                break
        if value is not None:
            out[name] = value
    return out


def _finish_reason(done: dict, fim: FimRequest) -> str:
    return "length" if _stop_type(done, fim) == "limit" else "stop"


def _usage(done: dict) -> dict:
    tokens_in, tokens_out = int(done.get("tokens_in") or 0), int(done.get("tokens_out") or 0)
    return {"prompt_tokens": tokens_in, "completion_tokens": tokens_out, "total_tokens": tokens_in + tokens_out}


# -- routes -----------------------------------------------------------------------------------------------


def _authenticate(request: Request) -> Principal:
    """A workspace API key (or an ID token) as `Authorization: Bearer`, or Continue's `x-api-key`."""
    authorization = request.headers.get("authorization")
    if not authorization and request.headers.get("x-api-key"):
        authorization = f"Bearer {request.headers['x-api-key']}"
    cached = _cached_bearer(authorization)
    if cached is not None:
        return cached
    principal = principal_from_bearer(authorization)
    if authorization:  # the same 2-second cache as /api/complete: a cache hit should not wait for SQL
        if len(_complete._bearer_cache) > 1000:
            _complete._bearer_cache.clear()
        _complete._bearer_cache[hashlib.sha256(authorization.encode()).hexdigest()] = (time.monotonic(), principal)
    return principal


async def _prepare(request: Request, protocol: Protocol, error: Callable[[int, str], Response]):
    """(principal, body) or an error response in the protocol's shape."""
    try:
        principal = await run_in_threadpool(_authenticate, request)
    except AuthError as exc:
        return error(401, str(exc))
    try:
        raw = await read_body(request, MAX_FIM_BODY_BYTES)
        if not raw.strip():
            return error(400, "the request body is empty: send a JSON object")
        body = parse_json_object(raw)
    except BodyError as exc:
        response = error(exc.status, str(exc))
        response.headers.update(error_headers(exc))
        return response
    except ClientDisconnect:
        return Response(status_code=499)
    return principal, body


def _session(request: Request, principal: Principal, protocol: Protocol):
    session_name = request.headers.get("x-keel-session") or "default"
    return get_completion_service().session(principal.sub, f"{protocol}:{session_name}"[:64],
                                            billing_customer(principal))


def _open(request: Request, principal: Principal, protocol: Protocol, fim: FimRequest):
    return _session(request, principal, protocol).open(fim.state, fim.options)


def _sse(payload: dict) -> str:
    return f"data: {json.dumps(payload)}\n\n"


def _streaming(request: Request, ticket, lines: Iterator[str]) -> Response:
    headers = {"Cache-Control": "no-cache", "X-Keel-Suggestion-Id": ticket.id}
    if ticket.cached_text is not None or ticket.empty_reason:
        async def immediate():  # a cache hit: no worker thread at all
            for line in lines:
                yield line

        return StreamingResponse(immediate(), media_type="text/event-stream", headers=headers)
    return _CompletionStreamResponse(lines, ticket, media_type="text/event-stream", headers=headers)


async def infill(request: Request):
    """llama.cpp's `/infill`."""
    def error(status: int, message: str) -> JSONResponse:
        return _llama_error(status, message, _error_kind(status))

    started = time.perf_counter()
    prepared = await _prepare(request, Protocol.INFILL, error)
    if isinstance(prepared, Response):
        return prepared
    principal, body = prepared
    try:
        fim = parse_infill(body, request)
        model = get_completion_service().backend.model
        if fim.n_predict == 0:  # llama.vscode's and llama.vim's context warm-up: answer now, evaluate behind it
            _session(request, principal, Protocol.INFILL).warm(fim.state, fim.options)
            warm_up = {"completion": "", "tokens_in": 0, "tokens_out": 0, "status": "empty"}
            return JSONResponse(_infill_final(warm_up, fim, started, model))
        ticket = _open(request, principal, Protocol.INFILL, fim)
    except FimInputError as exc:
        return error(exc.status, str(exc))
    except (CompletionInputError, ValueError) as exc:
        return error(413 if "limit is" in str(exc) else 400, str(exc))
    scanner = _StopScanner(fim.stop)
    if not fim.stream:
        done = await _run_to_end(request, ticket, scanner)
        failed = _failure_status(done)
        if failed:
            return error(failed, done.get("error") or "the model failed")
        return JSONResponse(_infill_final(done, fim, started, model))

    def lines() -> Iterator[str]:
        with closing(_events(ticket, scanner)) as events:
            yield from infill_lines(events)

    def infill_lines(events) -> Iterator[str]:
        for kind, value in events:
            if kind == "delta":
                yield _sse({"index": 0, "content": value, "tokens": [], "stop": False, "id_slot": 0})
            else:
                failed = _failure_status(value)
                if failed:
                    yield _sse({"error": {"code": failed, "message": value.get("error") or "the model failed",
                                          "type": _error_kind(failed)}})
                    return
                final = _infill_final(value, fim, started, model)
                if not fim.response_fields:
                    final["content"] = ""  # llama.cpp's last event carries no text, only the summary
                yield _sse(final)

    return _streaming(request, ticket, lines())


async def openai_completions(request: Request):
    """OpenAI's `/v1/completions` with `suffix` (and Continue's `/v1/fim/completions`)."""
    def error(status: int, message: str) -> JSONResponse:
        code = {401: "invalid_api_key", 429: "budget_exceeded"}.get(status)
        return _openai_error(status, message, _error_kind(status) if status != 502 else "api_error", code)

    prepared = await _prepare(request, Protocol.OPENAI, error)
    if isinstance(prepared, Response):
        return prepared
    principal, body = prepared
    try:
        from core.llm import get_gateway

        gateway = get_gateway()
        code_models = {"code", *gateway.settings.tiers.get("code", [])}
        fim = parse_openai(body, request, gateway.model_ids(), code_models)
        if fim.n_predict == 0:
            ticket = None
        else:
            ticket = _open(request, principal, Protocol.OPENAI, fim)
    except FimInputError as exc:
        return error(exc.status, str(exc))
    except (CompletionInputError, ValueError) as exc:
        return error(413 if "limit is" in str(exc) else 400, str(exc))
    completion_id = f"cmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())

    def payload(choice: dict, usage: dict | None = None, keel: dict | None = None) -> dict:
        body = {"id": completion_id, "object": "text_completion", "created": created, "model": fim.model,
                "choices": [choice] if choice else []}
        if usage is not None:
            body["usage"] = usage
        if keel is not None:
            body["keel"] = keel
        return body

    def keel_of(done: dict) -> dict:
        return {k: done.get(k) for k in ("id", "status", "source", "cached", "latency_ms", "request_id")}

    scanner = _StopScanner(fim.stop)
    if not fim.stream:
        done: dict = {"completion": "", "tokens_in": 0, "tokens_out": 0} if ticket is None else \
            await _run_to_end(request, ticket, scanner)
        failed = _failure_status(done)
        if failed:
            return error(failed, done.get("error") or "the model failed")
        choice = {"text": done.get("completion") or "", "index": 0, "logprobs": None,
                  "finish_reason": _finish_reason(done, fim)}
        return JSONResponse(payload(choice, _usage(done), keel_of(done)))

    def chunk(text: str, finish: str | None = None) -> dict:
        # `text` is OpenAI's field (the SDK, Tabby); `delta.content` is what Continue's FIM client reads
        return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish, "delta": {"content": text}}

    def lines() -> Iterator[str]:
        if ticket is None:
            yield _sse(payload(chunk("", "length")))
            yield "data: [DONE]\n\n"
            return
        with closing(_events(ticket, scanner)) as events:
            yield from openai_lines(events)

    def openai_lines(events) -> Iterator[str]:
        for kind, value in events:
            if kind == "delta":
                yield _sse(payload(chunk(value)))
                continue
            failed = _failure_status(value)
            if failed:
                yield _sse({"error": {"message": value.get("error") or "the model failed",
                                      "type": _error_kind(failed) if failed != 502 else "api_error",
                                      "code": "budget_exceeded" if failed == 429 else None}})
            else:
                # the finish reason comes before [DONE]: Tabby stops reading at the first finish_reason
                yield _sse(payload(chunk("", _finish_reason(value, fim)), keel=keel_of(value)))
                if fim.include_usage:
                    yield _sse(payload({}, _usage(value)))
            yield "data: [DONE]\n\n"

    if ticket is None:
        return StreamingResponse(iter(list(lines())), media_type="text/event-stream")
    return _streaming(request, ticket, lines())
