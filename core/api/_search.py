"""`POST /api/search`: ask the document search as the person whose OIDC ID token is the bearer (verified against
the provider's JWKS: signature, issuer, audience, expiry). API keys name a workspace, not a person with groups and
clearance, so they are refused (401) like missing, expired and forged tokens.

Body: {"question": str, "k": 1-20 (default 5), "answer": true (false: retrieval only, no model), "stream": false}.
Response: {"answer", "covered", "sources": [{n, doc_id, title, path, url}], "chunks": [{doc_id, chunk_id, text}],
"citations", "audit_id", ...}. With "stream": true, server-sent events: {"type": "sources", "sources": [...]},
{"type": "delta", "text"}, then {"type": "done", ...the full object}.
"""

from __future__ import annotations

import json

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from core.api._http import BodyError, error_headers, parse_json_object, read_body
from core.auth import API_KEY_PREFIX, AuthError, principal_from_id_token

MAX_SEARCH_BODY_BYTES = 100_000


def _id_token_principal(authorization: str | None):
    if not authorization or not authorization.lower().startswith("bearer "):
        raise AuthError("missing credentials: send 'Authorization: Bearer <OIDC ID token>'")
    token = authorization[7:].strip()
    if token.startswith(API_KEY_PREFIX):
        raise AuthError("document search needs a person's ID token; API keys carry no groups or clearance")
    return principal_from_id_token(token)


async def api_search(request: Request):
    from core.search import SearchInputError, ask

    try:
        principal = await run_in_threadpool(_id_token_principal, request.headers.get("authorization"))
    except AuthError as exc:
        return JSONResponse({"error": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
    try:
        body = parse_json_object(await read_body(request, MAX_SEARCH_BODY_BYTES))
    except BodyError as exc:
        return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=error_headers(exc))
    except ClientDisconnect:
        return Response(status_code=499)
    question, k = body.get("question"), body.get("k", 5)
    use_llm, stream = body.get("answer", True), body.get("stream", False)
    if not isinstance(use_llm, bool) or not isinstance(stream, bool):
        return JSONResponse({"error": "'answer' and 'stream' must be true or false"}, status_code=400)
    if not isinstance(question, str):  # the same words search's own check uses
        return JSONResponse({"error": "the question must be text"}, status_code=400)
    try:
        run = await run_in_threadpool(lambda: ask(principal, question, k=k, channel="api", use_llm=use_llm))
    except SearchInputError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    if not stream:
        answer = await run_in_threadpool(run.result)
        return JSONResponse(answer.as_dict())

    def events():
        sources = [{"n": s.n, "doc_id": s.doc_id, "title": s.title, "path": s.path, "url": s.url}
                   for s in run.sources]
        yield f"data: {json.dumps({'type': 'sources', 'sources': sources})}\n\n"
        try:
            for piece in run:
                yield f"data: {json.dumps({'type': 'delta', 'text': piece})}\n\n"
        finally:
            run.cancel()
        yield f"data: {json.dumps({'type': 'done', **run.answer.as_dict()})}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
