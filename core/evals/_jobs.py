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
    close_run(job.progress.get("run_id"), job.error or "worker lost")


@jobs.kind(KIND, on_lost=_lost)
def run_eval(ctx: JobContext, suite: str, started_by: str | None = None, options: dict | None = None) -> dict:
    from core.evals._runner import run_suite

    # The id of the eval_run row this job created rides in every progress report, so a replica that finds the job
    # lost closes exactly that run, never another run of the suite (a CLI run started at the same time).
    run_id: list[int] = []

    def created(new_id: int) -> None:
        run_id.append(new_id)
        ctx.progress(0, None, message="started", force=True, run_id=new_id)

    def progress(done, total, info) -> None:
        ctx.progress(done, total, message=str(info.get("case")), run_id=run_id[0] if run_id else None)

    try:
        report = run_suite(suite, started_by=started_by, **(options or {}), on_run=created, progress=progress)
    except BaseException as exc:
        close_run(run_id[0] if run_id else None, f"stopped: {exc or type(exc).__name__}")
        raise
    run = getattr(report, "run", {}) or {}
    return {"run_id": run.get("id"), "status": run.get("status"), "score": run.get("score")}


def close_run(run_id: int | None, message: str) -> None:
    """Mark this job's own eval_run error if it is still running (no id: the job never created one)."""
    from core.evals._runner import RunStatus
    from core.tables import EvalRun

    if run_id is None:
        return
    with db.session() as s:
        run = s.get(EvalRun, int(run_id))
        if run is not None and run.status == RunStatus.RUNNING:
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
