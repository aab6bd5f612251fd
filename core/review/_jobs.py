"""Reviews started from the PR review page as durable jobs: the page polls the job's progress from SQL (so a
reload, or another replica behind the proxy, still finds it), and the result comes back as the job's JSON."""

from __future__ import annotations

import time
from dataclasses import fields
from typing import Callable

from core import jobs
from core.jobs import Job, JobContext, JobStatus

KIND = "review"


@jobs.kind(KIND)
def run_review_job(ctx: JobContext, request: dict, use_llm: bool, use_cache: bool, user: str | None = None) -> dict:
    from core.review import ReviewOptions, review_diff, review_refs

    options = ReviewOptions(use_llm=use_llm, use_cache=use_cache, user=user)

    def progress(fraction: float, message: str) -> None:
        ctx.progress(round(min(1.0, fraction) * 100), 100, message=message)

    if request.get("kind") == "refs":
        result = review_refs(request["repo"], request["base"], request["head"], options, progress=progress)
    else:
        result = review_diff(request["diff"], request["repo"], options, progress=progress)
    return result.as_dict(with_diff=True)


def submit_review(request: dict, *, use_llm: bool, use_cache: bool, user: str | None) -> str:
    """Queue a review; an uploaded diff's bytes are decoded first (a DiffError says what is wrong with them)."""
    if isinstance(request.get("diff"), (bytes, bytearray)):
        from core.review._diff import decode_diff

        request = dict(request, diff=decode_diff(bytes(request["diff"])))
    params = {"request": {k: v for k, v in request.items() if k in ("kind", "repo", "base", "head", "diff", "label")},
              "use_llm": use_llm, "use_cache": use_cache, "user": user}
    job_id, _ = jobs.submit(KIND, params, owner=user or "", label=f"review {request.get('label') or ''}".strip())
    return job_id


def cached_result(request: dict, *, use_llm: bool, user: str | None):
    """The cached review of this request, found without a job (so a re-run does not wait for a free worker while
    other reviews run), or None: not reviewed yet, or a problem the job itself will report in its own words."""
    from core.review._agent import ReviewOptions, cached_review
    from core.review._errors import ReviewError

    options = ReviewOptions(use_llm=use_llm, use_cache=True, user=user)
    try:
        if request.get("kind") == "refs":
            return cached_review(None, request["repo"], options, refs=(request.get("base"), request.get("head")))
        return cached_review(request["diff"], request["repo"], options)
    except (ReviewError, KeyError):  # undecodable bytes are a DiffError, a ReviewError
        return None


def wait_limit_s() -> float:
    """How long the page waits for a review: the review's own time budget plus a minute for queueing and set-up."""
    from core.review._agent import ReviewOptions

    return ReviewOptions().time_budget_s + 60.0


def wait_for_review(job_id: str, *, timeout_s: float | None = None, interval_s: float = 0.25,
                    on_poll: Callable[[Job], None] | None = None) -> Job:
    """Poll the job until it finishes or the wait limit passes; then it is cancelled (so it does not run later for
    nobody) and a ReviewError says plainly why: no worker picked it up, or it ran past its limit."""
    from core.review._errors import ReviewError

    limit = wait_limit_s() if timeout_s is None else timeout_s
    deadline = time.monotonic() + limit
    job = jobs.get(job_id)
    while not job.status.finished:
        if time.monotonic() >= deadline:
            try:
                jobs.cancel(job_id, by="the review page (wait limit)")
            except jobs.JobError:
                job = jobs.get(job_id)  # it finished just now after all
                if job.status.finished:
                    break
            if job.status == JobStatus.QUEUED:
                raise ReviewError(f"No worker picked this review up within {limit:.0f} s, so it was cancelled. "
                                  "No server process is running background jobs right now (KEEL_JOB_WORKERS=0 on "
                                  "every replica, or they are all busy); try again later.")
            raise ReviewError(f"The review did not finish within {limit:.0f} s, so it was cancelled.")
        time.sleep(interval_s)
        job = jobs.get(job_id)
        if on_poll:
            on_poll(job)
    return job


def result_of(job: Job):
    """The ReviewResult a finished review job returned (None unless it succeeded)."""
    from core.review._agent import ReviewResult
    from core.review._comments import Comment

    if job.status != JobStatus.SUCCEEDED or not isinstance(job.result, dict):
        return None
    data = dict(job.result)
    comments = [Comment.from_dict(c) for c in data.pop("comments", [])]
    names = {f.name for f in fields(ReviewResult)}
    return ReviewResult(comments=comments, **{k: v for k, v in data.items() if k in names and k != "comments"})


def error_of(job: Job) -> str | None:
    """What the page says when the review did not finish: a ReviewError's own words, never an internal name."""
    if job.status == JobStatus.CANCELLED:
        return "The review was cancelled."
    if job.status != JobStatus.FAILED:
        return None
    from core.review._errors import ReviewError

    error = job.error or ""
    name, _, message = error.partition(": ")
    if name in _names(ReviewError):
        return message
    return "The review could not finish because of an internal problem; it was logged."


def _names(cls) -> set[str]:
    return {cls.__name__}.union(*(_names(sub) for sub in cls.__subclasses__()))
