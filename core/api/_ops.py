"""A small JSON API over the same core calls the pages make, so scripts (and the two-replica test) can drive any
replica: jobs (list, show, cancel), start a search sync or an eval run, and the support chat and console.
Bearer: an OIDC ID token (or a workspace API key, which is never an admin, agent or customer)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.api._http import parse_json_object, read_body
from core.auth import AuthError, Principal, principal_from_bearer


class _Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _endpoint(fn, *, role: str | None = None, body: bool = False):
    """Authenticate, check the role, read the JSON body, run `fn` in a thread; errors become JSON with a status."""

    async def handler(request: Request) -> JSONResponse:
        try:
            principal = await run_in_threadpool(principal_from_bearer, request.headers.get("authorization"))
        except AuthError as exc:
            return JSONResponse({"error": str(exc)}, status_code=401)
        if role and not principal.has_role(role, "admin"):
            return JSONResponse({"error": f"this needs the {role} role"}, status_code=403)
        data: dict = {}
        if body:
            try:
                data = parse_json_object(await read_body(request, 1_000_000))
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=getattr(exc, "status", 400))
        try:
            result = await run_in_threadpool(fn, principal, data, request.path_params)
        except _Refused as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        except (ValueError, LookupError) as exc:  # core's bad-input errors (JobError, EvalError, support errors)
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(result)

    return handler


# -- jobs -----------------------------------------------------------------------------------------------------------


def _jobs_list(principal: Principal, _data, _params):
    from core import jobs

    owner = None if principal.has_role("admin") else principal.sub
    return {"jobs": [j.as_dict() | {"fraction": j.fraction} for j in jobs.list_jobs(owner=owner, limit=100)]}


def _visible_job(principal: Principal, job_id: str):
    from core import jobs

    job = jobs.get(job_id)
    if job.owner != principal.sub and not principal.has_role("admin"):
        raise _Refused(404, f"no job with id {job_id!r}")
    return job


def _job_show(principal: Principal, _data, params):
    job = _visible_job(principal, params["job_id"])
    return job.as_dict() | {"fraction": job.fraction}


def _job_cancel(principal: Principal, _data, params):
    from core import jobs

    job = _visible_job(principal, params["job_id"])
    return {"id": job.id, "status": str(jobs.cancel(job.id, by=principal.sub))}


def _search_sync(principal: Principal, data, _params):
    from core.search import DEMO_CORPUS, ingest_roots, start_background_sync

    roots = ingest_roots()
    root = data.get("root") or str(DEMO_CORPUS)
    if not isinstance(root, str):
        raise ValueError("root must be a folder path")
    job = start_background_sync(root, started_by=principal.sub, allowed_roots=roots)
    return {"id": job.id, "root": job.root, "status": str(job.status)}


def _eval_run(principal: Principal, data, _params):
    from core import jobs
    from core.evals import background_status, start_background_run

    suite = data.get("suite")
    if not isinstance(suite, str) or not suite:
        raise ValueError("give the suite to run as {\"suite\": NAME}")
    created = start_background_run(suite, started_by=principal.sub)
    job_id = background_status()[suite]["job_id"]
    return {"id": job_id, "created": created, "status": str(jobs.get(job_id).status)}


# -- support --------------------------------------------------------------------------------------------------------


def _message_dict(m) -> dict:
    return {"id": m.id, "role": m.role, "author": m.author, "text": m.text, "created_at": m.created_at}


def _support_send(principal: Principal, data, _params):
    from core.support import customer_from_principal, open_conversation, request_human, send_message

    customer = customer_from_principal(principal)
    conversation = open_conversation(customer)
    if data.get("human"):
        replies = request_human(conversation.id, customer, summarize_async=True)
    else:
        replies = send_message(conversation.id, customer, data.get("text"), summarize_async=True)
    return {"conversation_id": conversation.id, "replies": [_message_dict(m) for m in replies]}


def _support_conversation(principal: Principal, _data, _params):
    from core.support import customer_from_principal, latest_conversation, list_messages

    conversation = latest_conversation(customer_from_principal(principal))
    if conversation is None:
        return {"conversation_id": None, "status": None, "messages": []}
    return {"conversation_id": conversation.id, "status": conversation.status,
            "messages": [_message_dict(m) for m in list_messages(conversation.id)]}


def _support_queue(_principal: Principal, _data, _params):
    from core.support import queue

    return {"queue": [{"conversation_id": q.conversation_id, "status": q.status, "priority": q.priority,
                       "reason": q.reason, "assigned_to": q.assigned_to, "waiting_s": q.waiting_s,
                       "last_customer_message": q.last_customer_message} for q in queue()]}


def _support_claim(principal: Principal, _data, params):
    from core.support import claim

    conversation = claim(int(params["conversation_id"]), principal.sub)
    return {"conversation_id": conversation.id, "status": conversation.status}


def _support_reply(principal: Principal, data, params):
    from core.support import agent_reply

    return _message_dict(agent_reply(int(params["conversation_id"]), principal.sub, data.get("text")))


def _support_transcript(_principal: Principal, _data, params):
    from core.support import list_messages

    return {"messages": [_message_dict(m) for m in list_messages(int(params["conversation_id"]))]}


routes = [
    Route("/api/jobs", _endpoint(_jobs_list), methods=["GET"]),
    Route("/api/jobs/{job_id}", _endpoint(_job_show), methods=["GET"]),
    Route("/api/jobs/{job_id}/cancel", _endpoint(_job_cancel), methods=["POST"]),
    Route("/api/search/sync", _endpoint(_search_sync, role="admin", body=True), methods=["POST"]),
    Route("/api/evals/run", _endpoint(_eval_run, role="developer", body=True), methods=["POST"]),
    Route("/api/support/messages", _endpoint(_support_send, body=True), methods=["POST"]),
    Route("/api/support/conversation", _endpoint(_support_conversation), methods=["GET"]),
    Route("/api/support/queue", _endpoint(_support_queue, role="support_agent"), methods=["GET"]),
    Route("/api/support/conversations/{conversation_id:int}/claim",
          _endpoint(_support_claim, role="support_agent"), methods=["POST"]),
    Route("/api/support/conversations/{conversation_id:int}/reply",
          _endpoint(_support_reply, role="support_agent", body=True), methods=["POST"]),
    Route("/api/support/conversations/{conversation_id:int}",
          _endpoint(_support_transcript, role="support_agent"), methods=["GET"]),
]
