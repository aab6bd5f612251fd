"""Ingest/re-sync as a durable job (core.jobs): any replica's admin page polls its progress (counts, ETA) from SQL
and can cancel it; one sync at a time across replicas; a worker that dies mid-sync is retried once (a
second pass only hashes what the first finished)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from core import jobs
from core.jobs import Job, JobContext, JobStatus

KIND = "search_sync"


@jobs.kind(KIND, max_attempts=2)
def run_sync(ctx: JobContext, root: str, allowed_roots: list[str] | None = None) -> dict:
    from core.search._ingest import sync

    def progress(p) -> None:
        ctx.progress(p.done, p.total, message=p.current, eta_s=p.eta_s if p.phase == "indexing" else None,
                     force=p.phase != "indexing", phase=p.phase, indexed=p.indexed, unchanged=p.unchanged,
                     refused=p.refused)

    report = sync(root, progress=progress,
                  allowed_roots=[Path(r) for r in allowed_roots] if allowed_roots is not None else None)
    return report.as_dict()


@dataclass
class SyncJob:
    """What the admin page shows of a sync job (a view of the job row)."""

    id: str
    root: str
    started_by: str
    status: JobStatus
    started_at: float
    progress: object | None = None  # SyncProgress, rebuilt from the stored progress
    report: object | None = None  # IngestReport when finished
    error: str | None = None
    finished_at: float | None = None

    @property
    def running(self) -> bool:
        return not self.status.finished


def _view(job: Job) -> SyncJob:
    from core.search._ingest import IngestReport, SyncProgress

    p = job.progress
    progress = None
    if p.get("phase"):
        progress = SyncProgress(p["phase"], int(p.get("done") or 0), int(p.get("total") or 0),
                                float(p.get("elapsed_s") or 0.0), job.eta_s, int(p.get("indexed") or 0),
                                int(p.get("unchanged") or 0), int(p.get("refused") or 0), p.get("message") or "")
    report = None
    if isinstance(job.result, dict):
        names = {f.name for f in fields(IngestReport)}
        report = IngestReport(**{k: v for k, v in job.result.items() if k in names})
    error = job.error if job.status in (JobStatus.FAILED, JobStatus.CANCELLED) else None
    return SyncJob(id=job.id, root=job.params.get("root", ""), started_by=job.owner, status=job.status,
                   started_at=job.created_at, progress=progress, report=report, error=error,
                   finished_at=job.finished_at)


def sync_params(root: str | Path, allowed_roots: list[Path] | None) -> dict:
    """The job's parameters. An empty allow-list stays empty (nothing may be synced), never None (no limit)."""
    return {"root": str(root), "allowed_roots": [str(a) for a in allowed_roots] if allowed_roots is not None else None}


def start_background_sync(root: str | Path, *, started_by: str, allowed_roots: list[Path] | None = None) -> SyncJob:
    """Queue a sync of `root` unless a sync is queued or running on any replica (then return that one): two syncs
    would write the same LanceDB table at once."""
    job_id, _ = jobs.submit(KIND, sync_params(root, allowed_roots), owner=started_by, label=f"sync {root}",
                            dedupe_key=KIND)
    return _view(jobs.get(job_id))


def current_sync() -> SyncJob | None:
    """The newest sync job, started on any replica."""
    job = jobs.latest(KIND)
    return _view(job) if job is not None else None


def get_sync(job_id: str) -> SyncJob:
    return _view(jobs.get(job_id))
