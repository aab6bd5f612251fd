"""The vocabulary of jobs: their status and the errors the layer raises."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from core.errors import KeelError


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


class JobError(KeelError, ValueError):
    """Bad input to the job layer (unknown kind or id, parameters that are not JSON, a finished job cancelled)."""


class JobCancelled(Exception):
    """Raised inside a job's function at its next progress report once someone asked to cancel it."""


@dataclass(frozen=True)
class Job:
    """One job as every replica sees it (a row of the `job` table)."""

    id: str
    kind: str
    label: str
    owner: str
    status: JobStatus
    params: dict
    progress: dict  # {"done", "total", "message", ...}: whatever the job last reported
    eta_s: float | None
    result: Any
    error: str | None
    attempts: int
    max_attempts: int
    worker: str | None
    cancel_requested: bool
    created_at: float
    started_at: float | None
    heartbeat_at: float | None
    finished_at: float | None

    @property
    def fraction(self) -> float:
        done, total = self.progress.get("done"), self.progress.get("total")
        if self.status == JobStatus.SUCCEEDED:
            return 1.0
        if isinstance(done, (int, float)) and isinstance(total, (int, float)) and total > 0:
            return max(0.0, min(1.0, done / total))
        return 0.0

    def as_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "label": self.label, "owner": self.owner,
                "status": str(self.status), "params": self.params, "progress": self.progress, "eta_s": self.eta_s,
                "result": self.result, "error": self.error, "attempts": self.attempts,
                "max_attempts": self.max_attempts, "worker": self.worker, "cancel_requested": self.cancel_requested,
                "created_at": self.created_at, "started_at": self.started_at, "heartbeat_at": self.heartbeat_at,
                "finished_at": self.finished_at}
