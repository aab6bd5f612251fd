"""Route handlers for `/api` and `/v1`."""

from __future__ import annotations

import json
import time
import uuid

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from core import health
from core.api._complete import api_complete
from core.api._fim import infill, openai_completions
from core.api._http import parse_json_object, read_body
from core.api._search import api_search
from core.auth import AuthError, Principal, billing_customer, principal_from_bearer
from core.llm import BudgetRefused, LLMCancelled, LLMError, LLMRequest, get_gateway

MAX_BODY_BYTES = 1_000_000


def _openai_error(status: int, message: str, kind: str, code: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": code}}, status_code=status)


async def _authenticate(request: Request) -> Principal:
    return await run_in_threadpool(principal_from_bearer, request.headers.get("authorization"))


async def api_health(request: Request) -> JSONResponse:
    report = await run_in_threadpool(health.check)
    return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)


async def api_whoami(request: Request) -> JSONResponse:
    try:
        principal = await _authenticate(request)
    except AuthError as exc:
        return JSONResponse({"error": str(exc)}, status_code=401)
    return JSONResponse({
        "sub": principal.sub, "email": principal.email, "name": principal.name,
        "groups": sorted(principal.groups), "clearance": principal.clearance, "roles": sorted(principal.roles),
        "workspace": principal.workspace,
    })


async def v1_models(request: Request) -> JSONResponse:
    try:
        await _authenticate(request)
    except AuthError as exc:
        return _openai_error(401, str(exc), "invalid_request_error", "invalid_api_key")
    created = int(time.time())
    data = [{"id": m, "object": "model", "created": created, "owned_by": "keel"} for m in get_gateway().model_ids()]
    return JSONResponse({"object": "list", "data": data})


def _parse_chat_body(raw: bytes, principal: Principal) -> tuple[LLMRequest, bool, str]:
    """Translate an OpenAI chat.completions body into an LLMRequest; ValueError names the bad field."""
    if len(raw) > MAX_BODY_BYTES:
        raise ValueError(f"request body is larger than {MAX_BODY_BYTES:,} bytes")
    # Lone surrogates are let through here: chat text goes to the gateway, which sanitises what it logs.
    body = parse_json_object(raw, allow_lone_surrogates=True)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ValueError("'model' is required: a tier (fast, capable, code) or provider/model")
    gateway = get_gateway()
    if model not in gateway.model_ids():
        raise ValueError(f"unknown model {model!r}; GET /v1/models lists the choices")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty list")
    clean = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            raise ValueError(f"messages[{i}] must be an object with string 'content'")
        clean.append({"role": m.get("role"), "content": m["content"]})
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens", 256))
    temperature = body.get("temperature", 0.7)
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        raise ValueError("'max_tokens' must be an integer")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
        raise ValueError("'temperature' must be a number between 0 and 2")
    schema = None
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise ValueError("response_format.json_schema.schema must be a JSON schema object")
    elif isinstance(response_format, dict) and response_format.get("type") == "json_object":
        schema = {"type": "object"}
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    metadata = _parse_metadata(body.get("metadata"))
    tier, target = (model, None) if model in gateway.settings.tiers else ("capable", model)
    request = LLMRequest(
        messages=clean, tier=tier, target=target, feature="api", task="chat.completions",
        user=principal.sub, customer=billing_customer(principal), max_tokens=max_tokens,
        temperature=float(temperature), json_schema=schema, stop=stop if isinstance(stop, list) else None,
        metadata=metadata,
        durable_log=True,  # the response waits for its log row: a crash right after a 200 cannot lose the call
    )
    return request, bool(body.get("stream")), model


def _parse_metadata(value) -> dict[str, str] | None:
    """OpenAI's `metadata`: up to 16 string pairs (keys up to 64 characters, values up to 512), logged with the
    call; anything else is a 400 naming the rule."""
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > 16:
        raise ValueError("'metadata' must be an object of at most 16 string key/value pairs")
    for k, v in value.items():
        if not isinstance(v, str) or len(k) > 64 or len(v) > 512:
            raise ValueError("'metadata' keys must be at most 64 characters and values strings of at most 512")
    return dict(value)


def _complete_logged(gateway, llm_request: LLMRequest):
    """Complete, then wait until the call's log row is committed (errors included) before the route answers."""
    llm_stream = gateway.stream(llm_request)
    try:
        for _ in llm_stream:
            pass
        return llm_stream.result
    finally:
        llm_stream.wait_logged()


class _GatewayStreamResponse(StreamingResponse):
    """Closes the gateway stream as soon as the response ends, disconnects included, so the model is freed
    and the attempt is logged as cancelled at once rather than whenever the garbage collector runs."""

    def __init__(self, iterator, llm_stream, **kwargs):
        super().__init__(iterator, **kwargs)
        self._events, self._llm_stream = iterator, llm_stream

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            await run_in_threadpool(self._release)

    def _release(self) -> None:
        self._events.close()
        self._llm_stream.close()


async def v1_chat_completions(request: Request):
    try:
        principal = await _authenticate(request)
    except AuthError as exc:
        return _openai_error(401, str(exc), "invalid_request_error", "invalid_api_key")
    try:
        llm_request, stream, model = _parse_chat_body(await read_body(request, MAX_BODY_BYTES), principal)
    except ValueError as exc:
        return _openai_error(400, str(exc), "invalid_request_error")
    gateway = get_gateway()
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    if not stream:
        try:
            result = await run_in_threadpool(_complete_logged, gateway, llm_request)
        except LLMError as exc:
            if not exc.request_id:  # refused before any provider was called: the request itself is bad
                return _openai_error(400, str(exc), "invalid_request_error")
            if isinstance(exc, BudgetRefused):
                return _openai_error(429, str(exc), "insufficient_quota", "budget_exceeded")
            return _openai_error(502, str(exc), "api_error")
        return JSONResponse({
            "id": completion_id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": result.text},
                         "finish_reason": result.finish_reason or "stop"}],
            "usage": {"prompt_tokens": result.tokens_in, "completion_tokens": result.tokens_out,
                      "total_tokens": result.tokens_in + result.tokens_out},
            "keel": {"request_id": result.request_id, "provider": result.provider, "status": result.status},
        })

    try:
        llm_stream = gateway.stream(llm_request)
    except LLMError as exc:
        return _openai_error(400, str(exc), "invalid_request_error")

    def chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> str:
        payload = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if usage is None else []}
        if usage is not None:
            payload["usage"] = usage
        return f"data: {json.dumps(payload)}\n\n"

    def events():
        # Runs in a worker thread; if the client disconnects Starlette closes it and the gateway logs "cancelled".
        yield chunk({"role": "assistant", "content": ""})
        try:
            for piece in llm_stream:
                if piece.reset:
                    # A fallback restarted the answer; OpenAI's wire format cannot retract text, so say so.
                    yield chunk({"content": "\n[keel: provider failed mid-answer; continuing from a fallback]\n"})
                    continue
                yield chunk({"content": piece.text})
        except LLMCancelled:
            return
        except LLMError as exc:
            llm_stream.wait_logged()
            yield f"data: {json.dumps({'error': {'message': str(exc), 'type': 'api_error'}})}\n\n"
            yield "data: [DONE]\n\n"
            return
        result = llm_stream.result
        llm_stream.wait_logged()  # the row is committed before the client sees the end of the answer
        yield chunk({}, finish=result.finish_reason or "stop")
        yield chunk({}, usage={"prompt_tokens": result.tokens_in, "completion_tokens": result.tokens_out,
                               "total_tokens": result.tokens_in + result.tokens_out})
        yield "data: [DONE]\n\n"

    return _GatewayStreamResponse(events(), llm_stream, media_type="text/event-stream",
                                  headers={"Cache-Control": "no-cache", "X-Keel-Request-Id": llm_stream.request_id})


routes = [
    Route("/api/health", api_health, methods=["GET"]),
    Route("/api/whoami", api_whoami, methods=["GET"]),
    Route("/api/complete", api_complete, methods=["POST"]),
    Route("/api/search", api_search, methods=["POST"]),
    Route("/v1/models", v1_models, methods=["GET"]),
    Route("/v1/chat/completions", v1_chat_completions, methods=["POST"]),
    # fill-in-the-middle for editors that speak llama.cpp's or OpenAI's protocol, on the completion engine
    Route("/infill", infill, methods=["POST"]),
    Route("/v1/completions", openai_completions, methods=["POST"]),
    Route("/v1/fim/completions", openai_completions, methods=["POST"]),  # Continue's OpenAI provider posts FIM here
]
