"""Eval runs started from the Evals page as durable jobs: any replica shows them running and can cancel them;
one run per suite at a time across replicas. A run whose job stops early (error, cancel, dead worker) has its
`eval_run` row marked error, so it never stays "running"."""

from __future__ import annotations

import json
import time

from core import db, jobs
from core.jobs import JobContext, JobStatus

KIND = "eval_run"


def _lost(job) -> None:
    _close_open_run(job.params.get("suite", ""), job.started_at or job.created_at, job.error or "worker lost")


@jobs.kind(KIND, on_lost=_lost)
def run_eval(ctx: JobContext, suite: str, started_by: str | None = None, options: dict | None = None) -> dict:
    from core.ops._evals import run_suite

    started = time.time()
    try:
        report = run_suite(suite, started_by=started_by, **(options or {}),
                           progress=lambda done, total, info: ctx.progress(done, total, message=str(info.get("case"))))
    except BaseException as exc:
        _close_open_run(suite, started, f"stopped: {exc or type(exc).__name__}")
        raise
    run = getattr(report, "run", {}) or {}
    return {"run_id": run.get("id"), "status": run.get("status"), "score": run.get("score")}


def _close_open_run(suite: str, since: float, message: str) -> None:
    from core.ops._evals import RunStatus
    from core.tables import EvalRun

    from sqlmodel import select

    with db.session() as s:
        for run in s.exec(select(EvalRun).where(EvalRun.suite == suite, EvalRun.status == RunStatus.RUNNING,
                                                EvalRun.started_at >= since - 1)):
            run.status, run.finished_at = RunStatus.ERROR, time.time()
            run.summary = json.dumps({"message": message[:500]})
            s.add(run)


def start(name: str, *, started_by: str | None = None, **options) -> bool:
    """Queue a run of suite `name`; False when that suite is already queued or running on any replica."""
    _, created = jobs.submit(KIND, {"suite": name, "started_by": started_by, "options": options},
                             owner=started_by or "", label=f"eval {name}", dedupe_key=name)
    return created


def status() -> dict[str, dict]:
    """Per suite, its newest page-started run: running (queued or running), error, started, job id."""
    out: dict[str, dict] = {}
    for job in jobs.list_jobs(kind=KIND, limit=100):
        suite = job.params.get("suite", "")
        if suite in out:
            continue
        out[suite] = {"running": not job.status.finished, "started": job.created_at, "job_id": job.id,
                      "status": str(job.status), "done": job.progress.get("done"), "total": job.progress.get("total"),
                      "error": job.error if job.status in (JobStatus.FAILED, JobStatus.CANCELLED) else None}
    return out
