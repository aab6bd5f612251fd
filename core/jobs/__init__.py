"""Durable background work on huey, a maintained task queue: search syncs, eval runs, reviews started from a page
and delayed support summaries. Keel's layer is thin: each job's kind, owner, status, progress, ETA, result and error
are a row of the `job` table, so any replica's page and `keel jobs` see and cancel it, and a heartbeat lease turns
a dead worker's job into failed or retried, never "running" forever.

    @jobs.kind("search_sync", max_attempts=2)
    def run_sync(ctx: JobContext, root: str) -> dict: ...      # ctx.progress(done, total) reports, and cancels
    job_id = jobs.submit("search_sync", {"root": "..."}, owner=user)
"""

from __future__ import annotations

import time
from typing import Callable

from core.jobs import _runner, _store
from core.jobs._runner import LEASE_S, WORKER_ID, JobContext, housekeeping
from core.jobs._types import ACTIVE, Job, JobCancelled, JobError, JobStatus


def kind(name: str, *, max_attempts: int = 1, on_lost: Callable[[Job], None] | None = None) -> Callable:
    """Register a job function under `name`. `max_attempts` > 1 only for work that is safe to run again from the
    start after a worker died mid-way (a sync is: unchanged files are only hashed). `on_lost(job)` tidies what a
    worker that died left behind, once the job is failed (and a job cancelled before it ran)."""

    def decorate(fn):
        _runner.register(name, fn, max_attempts, on_lost)
        return fn

    return decorate


def submit(kind_name: str, params: dict | None = None, *, owner: str = "", label: str = "",
           dedupe_key: str | None = None, delay_s: float = 0.0) -> tuple[str, bool]:
    """Queue a job; returns (id, created). With `dedupe_key`, an active job of that kind and key is returned
    instead of starting a second one (one sync of a folder at a time, across replicas)."""
    registered = _runner.kinds().get(kind_name)
    if registered is None:
        raise JobError(f"unknown job kind {kind_name!r}; known: {', '.join(sorted(_runner.kinds())) or 'none'}")
    if not 0 <= delay_s <= 86_400:
        raise JobError("delay_s must be between 0 and 86,400 seconds")
    job_id, created = _store.insert_job(kind=kind_name, target=registered.target, params=dict(params or {}),
                                        owner=owner, label=label or kind_name, max_attempts=registered.max_attempts,
                                        dedupe_key=dedupe_key, run_after=time.time() + delay_s)
    if created:
        queue = _runner.get_queue(start=True)  # this process runs jobs too (the single-process default)
        queue.send(job_id, delay_s)
    return job_id, created


def get(job_id: str) -> Job:
    job = _store.load(job_id)
    if job is None:
        raise JobError(f"no job with id {job_id!r}")
    return job


def list_jobs(*, kind: str | None = None, status: list[str] | None = None, owner: str | None = None,
              limit: int = 50) -> list[Job]:
    """Newest first, from SQL (every replica's jobs)."""
    if status:
        bad = [s for s in status if s not in set(JobStatus)]
        if bad:
            raise JobError(f"unknown job status {bad[0]!r}; use one of {', '.join(JobStatus)}")
    return _store.list_jobs(kind=kind, status=status, owner=owner, limit=limit)


def latest(kind_name: str) -> Job | None:
    """The newest job of a kind, whichever replica started it."""
    jobs = _store.list_jobs(kind=kind_name, limit=1)
    return jobs[0] if jobs else None


def cancel(job_id: str, *, by: str = "") -> JobStatus:
    """Cancel from any replica: a queued job at once (its kind's `on_lost` tidies up, since its function never
    runs), a running one at its next progress report."""
    status = _store.request_cancel(job_id, by)
    if status == JobStatus.CANCELLED:
        _runner.tidy(job_id)
    return status


def wait(job_id: str, timeout: float = 60.0, interval: float = 0.2) -> Job:
    """Block until the job has finished (for the CLI and tests); raises TimeoutError with its last state."""
    deadline = time.monotonic() + timeout
    while True:
        job = get(job_id)
        if job.status.finished:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {job.status} after {timeout:g} s ({job.progress})")
        time.sleep(interval)


def start_workers() -> None:
    """Run jobs in this process (the app's lifespan calls it; `KEEL_JOB_WORKERS=0` leaves it to other replicas)."""
    _runner.get_queue(start=True)


def stop_workers(requeue: bool = True) -> None:
    _runner.stop(requeue=requeue)


__all__ = ["ACTIVE", "LEASE_S", "WORKER_ID", "Job", "JobCancelled", "JobContext", "JobError", "JobStatus", "cancel",
           "get", "housekeeping", "kind", "latest", "list_jobs", "start_workers", "stop_workers", "submit", "wait"]
