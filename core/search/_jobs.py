"""Ingest/re-sync in a background thread, so the admin page can poll its progress (counts, ETA) without holding
a request open; one job at a time per process."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class SyncJob:
    root: str
    started_by: str
    started_at: float = field(default_factory=time.time)
    progress: object | None = None  # the latest SyncProgress
    report: object | None = None  # IngestReport when finished
    error: str | None = None
    finished_at: float | None = None

    @property
    def running(self) -> bool:
        return self.finished_at is None


_lock = threading.Lock()
_current: SyncJob | None = None


def start_background_sync(root: str | Path, *, started_by: str, allowed_roots: list[Path] | None = None) -> SyncJob:
    """Start syncing `root` unless a job is running (then return that one). Errors end up in `job.error`."""
    global _current
    from core.search._ingest import sync

    with _lock:
        if _current is not None and _current.running:
            return _current
        job = SyncJob(root=str(root), started_by=started_by)
        _current = job

    def work() -> None:
        try:
            job.report = sync(root, progress=lambda p: setattr(job, "progress", p), allowed_roots=allowed_roots)
        except Exception as exc:  # shown on the page; the index is untouched or consistent (atomic per document)
            job.error = f"{type(exc).__name__}: {exc}"
        finally:
            job.finished_at = time.time()

    threading.Thread(target=work, name="search-sync", daemon=True).start()
    return job


def current_sync() -> SyncJob | None:
    return _current
