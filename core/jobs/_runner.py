"""The queue and the in-process worker: huey carries job ids (SqliteHuey in a file beside the SQLite database by
default, PostgresHuey on the shared PostgreSQL when there are replicas), a few worker threads per process run
them, and one housekeeping thread renews this process's leases and reaps other processes' expired ones."""

from __future__ import annotations

import importlib
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from core.jobs import _store
from core.jobs._types import JobCancelled, JobError, JobStatus

if TYPE_CHECKING:
    from huey.consumer import Consumer

_logger = logging.getLogger(__name__)

LEASE_S = float(os.environ.get("KEEL_JOB_LEASE_S", "15"))  # a running job nobody renews for this long is reaped
HEARTBEAT_S = max(0.5, LEASE_S / 5)
STALE_QUEUED_S = 60.0
WORKER_ID = f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Kind:
    name: str
    target: str  # module:function
    fn: Callable[..., Any]
    max_attempts: int
    on_lost: Callable[[Any], None] | None = None  # tidies what a job killed mid-way left (called by the reaper)


_kinds: dict[str, Kind] = {}


def register(name: str, fn: Callable[..., Any], max_attempts: int, on_lost=None) -> Kind:
    kind = Kind(name, f"{fn.__module__}:{fn.__qualname__}", fn, max(1, int(max_attempts)), on_lost)
    _kinds[name] = kind
    return kind


# Modules that held job functions before a move: a job queued before the upgrade still names the old path.
MOVED_MODULES = {
    "core.ops._eval_jobs": "core.evals._jobs",
    "core.ops._investigate": "core.observe._investigate",
    "core.ops._model_migration": "core.observe._model_migration",
}


def _current_target(target: str) -> str:
    module, sep, function = target.partition(":")
    return f"{MOVED_MODULES.get(module, module)}{sep}{function}"


def resolve(name: str, target: str) -> Kind:
    """The registered function for a job row: importing its module registers it; nothing unregistered ever runs."""
    target = _current_target(target)
    if name not in _kinds:
        module = target.partition(":")[0]
        if not module.startswith("core."):
            raise JobError(f"job kind {name!r} names a module outside core: {target!r}")
        importlib.import_module(module)
    kind = _kinds.get(name)
    if kind is None or kind.target != target:
        raise JobError(f"no job kind {name!r} is registered for {target!r}")
    return kind


def kinds() -> dict[str, Kind]:
    return dict(_kinds)


# -- a running job's handle -------------------------------------------------------------------------------------


@dataclass
class JobContext:
    """Handed to a job's function: `progress()` stores how far it is (and its ETA) for every replica to see, and
    raises JobCancelled once someone asked to cancel it."""

    job_id: str
    params: dict
    attempt: int = 1
    min_interval_s: float = 0.3
    _started: float = field(default_factory=time.monotonic)
    _last: float = -1e9
    cancel_event: threading.Event = field(default_factory=threading.Event)

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check(self) -> None:
        if self.cancel_event.is_set():
            raise JobCancelled(self.job_id)

    def progress(self, done: float | None = None, total: float | None = None, *, message: str = "",
                 eta_s: float | None = None, force: bool = False, **extra: Any) -> None:
        self.check()
        now = time.monotonic()
        if not force and now - self._last < self.min_interval_s and not (total and done is not None and done >= total):
            return
        self._last = now
        elapsed = now - self._started
        if eta_s is None and done and total and done < total:
            eta_s = elapsed / done * (total - done)
        data = {"done": done, "total": total, "message": message[:500], "elapsed_s": round(elapsed, 2), **extra}
        if _store.report(self.job_id, WORKER_ID, data, eta_s):
            self.cancel_event.set()
            raise JobCancelled(self.job_id)


_running: dict[str, JobContext] = {}
_running_lock = threading.Lock()


def execute(job_id: str) -> None:
    """What a queue message does: claim the job, run its function, store the outcome."""
    found = _store.target_of(job_id)
    if found is None:
        return  # deleted (a test database that went away): nothing to do
    try:
        kind = resolve(*found)
    except JobError as exc:
        if _store.claim(job_id, WORKER_ID, LEASE_S):
            _store.finish(job_id, WORKER_ID, JobStatus.FAILED, error=str(exc))
        return
    job = _store.load(job_id)
    if job is None or job.status != JobStatus.QUEUED:
        return
    if not _store.claim(job_id, WORKER_ID, LEASE_S):
        return  # another worker won, or it was cancelled meanwhile
    ctx = JobContext(job_id, job.params, attempt=job.attempts + 1)
    with _running_lock:
        _running[job_id] = ctx
    try:
        result = kind.fn(ctx, **job.params)
    except JobCancelled:
        latest = _store.load(job_id)  # None only if the row went away meanwhile (finish then changes nothing)
        _store.finish(job_id, WORKER_ID, JobStatus.CANCELLED, error=(latest and latest.error) or "cancelled")
    except Exception as exc:  # the job's own failure: stored for the page and the CLI
        _logger.exception("job %s (%s) failed", job_id, kind.name)
        _store.finish(job_id, WORKER_ID, JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:4000])
    else:
        if not _store.finish(job_id, WORKER_ID, JobStatus.SUCCEEDED, result=result):
            _logger.warning("job %s finished after losing its lease; its result was not stored", job_id)
    finally:
        with _running_lock:
            _running.pop(job_id, None)


def running_here() -> list[str]:
    with _running_lock:
        return list(_running)


# -- the queue ----------------------------------------------------------------------------------------------------


class _Queue:
    def __init__(self, url: str):
        self.url = url
        self.huey = _make_huey(url)
        self.task = self.huey.task(name="keel_job")(execute)
        self.consumer: Consumer | None = None
        self.stop = threading.Event()
        self.housekeeper: threading.Thread | None = None

    def send(self, job_id: str, delay_s: float = 0.0) -> None:
        if delay_s > 0:
            self.task.schedule(args=(job_id,), delay=delay_s)
        else:
            self.task(job_id)

    def start(self, workers: int) -> None:
        from huey.consumer import Consumer

        # Consumer.start() would install signal handlers in the web server's process: start its threads ourselves.
        self.consumer = Consumer(self.huey, workers=workers, worker_type="thread", periodic=False,
                                 initial_delay=0.05, backoff=1.3, max_delay=0.5, check_worker_health=False)
        self.consumer.scheduler.start()
        for _, thread in self.consumer.worker_threads:
            thread.start()
        self.housekeeper = threading.Thread(target=self._housekeep, name="keel-jobs-heartbeat", daemon=True)
        self.housekeeper.start()

    def _housekeep(self) -> None:
        last_reap = 0.0
        while not self.stop.wait(HEARTBEAT_S):
            try:
                with _running_lock:
                    contexts = dict(_running)
                for job_id in _store.heartbeat(WORKER_ID, list(contexts), LEASE_S):
                    contexts[job_id].cancel_event.set()
                if time.monotonic() - last_reap > HEARTBEAT_S * 2:
                    last_reap = time.monotonic()
                    housekeeping(self)
            except Exception:  # a database hiccup: try again at the next beat (the lease is 5 beats long)
                _logger.exception("job heartbeat failed")

    def close(self) -> None:
        self.stop.set()
        if self.consumer is not None:
            self.consumer.stop_flag.set()
            for _, thread in self.consumer.worker_threads:
                thread.join(timeout=2)
            self.consumer.scheduler.join(timeout=2)
        if self.housekeeper is not None:
            self.housekeeper.join(timeout=2)
        try:
            self.huey.storage.close()
        except Exception:  # shutting down anyway: say why the store did not close cleanly
            _logger.exception("closing the job store failed")


def _make_huey(url: str):
    from huey import PostgresHuey, SqliteHuey

    if url.startswith("sqlite"):
        from core.config import get_settings

        path = url.removeprefix("sqlite:///")
        # The queue's own file next to the database: huey's exclusive dequeue transactions then never wait on, or
        # delay, the request log's writes to the main file. The job state itself is in the main database.
        queue_file = (f"{path}.jobs" if path and path != ":memory:"
                      else str(get_settings().home / "keel.db.jobs"))
        return SqliteHuey("keel", filename=queue_file, results=False, timeout=10)
    if url.startswith("postgresql"):
        from sqlalchemy.engine import make_url

        u = make_url(url)
        params = {k: v for k, v in dict(host=u.host, port=u.port, user=u.username, password=u.password,
                                        dbname=u.database).items() if v is not None}
        return PostgresHuey("keel", results=False, table_prefix="keel_queue", read_timeout=0.5, **params)
    raise JobError(f"background jobs need SQLite or PostgreSQL, not {url.split(':', 1)[0]!r}")


_queue: _Queue | None = None
_queue_lock = threading.Lock()


def get_queue(start: bool = False) -> _Queue:
    """The queue for the configured database (rebuilt when the URL changes, as tests do)."""
    global _queue
    from core.config import get_settings

    url = get_settings().database_url
    with _queue_lock:
        if _queue is not None and _queue.url != url:
            _queue.close()
            _queue = None
        if _queue is None:
            _queue = _Queue(url)
        if start and _queue.consumer is None and os.environ.get("KEEL_JOB_WORKERS", "2") != "0":
            _queue.start(max(1, int(os.environ.get("KEEL_JOB_WORKERS", "2"))))
        return _queue


def housekeeping(queue: _Queue | None = None) -> None:
    """Reap expired leases and resend lost messages; any replica (and `keel jobs`) may run it at any time."""
    queue = queue or get_queue()
    retry, ended = _store.reap()
    for job_id in retry + _store.stale_queued(STALE_QUEUED_S):
        queue.send(job_id)
    for job_id in ended:
        tidy(job_id)


def tidy(job_id: str) -> None:
    """Call the kind's `on_lost` for a job that ended without its function finishing (reaped, or cancelled while
    queued), so what it stands for (a report row, an eval run) is closed rather than left "running"."""
    job = _store.load(job_id)
    if job is None:
        return
    try:
        found = _store.target_of(job_id)
        if found is None:
            return  # deleted since it was loaded: nothing left to close
        kind = resolve(job.kind, found[1])
        if kind.on_lost is not None:
            kind.on_lost(job)
    except Exception:  # the job is already failed or cancelled; tidying is best effort
        _logger.exception("tidying after lost job %s failed", job_id)


def stop(requeue: bool = True) -> None:
    """Stop this process's workers; jobs still running here go back to the queue (or fail on their last try)."""
    global _queue
    with _queue_lock:
        queue, _queue = _queue, None
    if queue is None:
        return
    for job_id in running_here():
        with _running_lock:
            ctx = _running.get(job_id)
        if ctx is not None:
            ctx.cancel_event.set()
        try:
            if requeue and _store.requeue(job_id, WORKER_ID, "retrying: the replica running it shut down"):
                queue.send(job_id)
            else:
                _store.finish(job_id, WORKER_ID, JobStatus.FAILED, error="the replica running it shut down")
        except Exception:
            _logger.exception("could not hand job %s back on shutdown", job_id)
    queue.close()
