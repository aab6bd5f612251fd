"""The `job` table: every state change is one conditional UPDATE, so two replicas racing for the same job (claim,
finish, reap) can never both win."""

from __future__ import annotations

import json
import math
import time
import uuid
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from core import db
from core.jobs._types import ACTIVE, Job, JobError, JobStatus
from core.tables import JobRow, table_of

T = table_of(JobRow)


def _json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, allow_nan=False, default=_default)
    except (TypeError, ValueError) as exc:
        raise JobError(f"the job's {what} must be JSON: {exc}") from None


def _default(value):
    if hasattr(value, "as_dict"):
        return value.as_dict()
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(value)
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def _loads(text: str | None, default):
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def to_job(row) -> Job:
    m = row._mapping
    return Job(id=m["id"], kind=m["kind"], label=m["label"], owner=m["owner"], status=JobStatus(m["status"]),
               params=_loads(m["params_json"], {}), progress=_loads(m["progress_json"], {}), eta_s=m["eta_s"],
               result=_loads(m["result_json"], None), error=m["error"], attempts=m["attempts"],
               max_attempts=m["max_attempts"], worker=m["worker"], cancel_requested=bool(m["cancel_requested"]),
               created_at=m["created_at"], started_at=m["started_at"], heartbeat_at=m["heartbeat_at"],
               finished_at=m["finished_at"])


def insert_job(*, kind: str, target: str, params: dict, owner: str, label: str, max_attempts: int,
               dedupe_key: str | None, run_after: float) -> tuple[str, bool]:
    """A new queued job, or (when `dedupe_key` names an active job) that job's id; returns (id, created).
    The select is only a shortcut: the partial unique index on (kind, dedupe_key) over active jobs decides, so two
    replicas inserting at the same moment get one job (the loser's IntegrityError is answered with the winner)."""
    params_text = _json(params, "parameters")
    for _ in range(5):  # the winner may finish between our failed insert and the look-up: then insert again
        if dedupe_key:
            existing = _active_with_key(kind, dedupe_key)
            if existing:
                return existing, False
        job_id = uuid.uuid4().hex
        now = time.time()
        try:
            with db.get_engine().begin() as conn:
                conn.execute(insert(T).values(
                    id=job_id, kind=kind, target=target, label=label[:300], owner=(owner or "")[:255],
                    dedupe_key=dedupe_key, status=str(JobStatus.QUEUED), params_json=params_text, progress_json="{}",
                    attempts=0, max_attempts=max(1, int(max_attempts)), cancel_requested=False, created_at=now,
                    enqueued_at=now, run_after=run_after))
        except IntegrityError:
            if not dedupe_key:
                raise
            continue
        return job_id, True
    raise JobError(f"could not queue a {kind} job for {dedupe_key!r}: its key kept changing hands")


def _active_with_key(kind: str, dedupe_key: str) -> str | None:
    with db.get_engine().connect() as conn:
        return conn.execute(select(T.c.id).where(T.c.kind == kind, T.c.dedupe_key == dedupe_key,
                                                 T.c.status.in_([str(s) for s in ACTIVE]))
                            .order_by(T.c.created_at.desc()).limit(1)).scalar()


def load(job_id: str) -> Job | None:
    with db.get_engine().connect() as conn:
        row = conn.execute(select(T).where(T.c.id == job_id)).first()
    return to_job(row) if row else None


def target_of(job_id: str) -> tuple[str, str] | None:
    with db.get_engine().connect() as conn:
        row = conn.execute(select(T.c.kind, T.c.target).where(T.c.id == job_id)).first()
    return (row[0], row[1]) if row else None


def list_jobs(*, kind: str | None = None, status: list[str] | None = None, owner: str | None = None,
              limit: int = 50) -> list[Job]:
    query = select(T).order_by(T.c.created_at.desc()).limit(max(1, min(int(limit), 1000)))
    if kind:
        query = query.where(T.c.kind == kind)
    if status:
        query = query.where(T.c.status.in_(list(status)))
    if owner:
        query = query.where(T.c.owner == owner)
    with db.get_engine().connect() as conn:
        return [to_job(r) for r in conn.execute(query)]


def claim(job_id: str, worker: str, lease_s: float) -> bool:
    """Queued → running for this worker (one winner, whoever else got the same message)."""
    now = time.time()
    with db.get_engine().begin() as conn:
        return conn.execute(update(T).where(T.c.id == job_id, T.c.status == str(JobStatus.QUEUED),
                                            T.c.cancel_requested.is_(False))
                            .values(status=str(JobStatus.RUNNING), worker=worker, attempts=T.c.attempts + 1,
                                    started_at=now, heartbeat_at=now, lease_until=now + lease_s,
                                    error=None)).rowcount == 1


def report(job_id: str, worker: str, progress: dict, eta_s: float | None) -> bool:
    """Store progress; returns whether a cancel was requested (read in the same transaction)."""
    eta = eta_s if eta_s is not None and math.isfinite(eta_s) else None
    with db.get_engine().begin() as conn:
        conn.execute(update(T).where(T.c.id == job_id, T.c.worker == worker, T.c.status == str(JobStatus.RUNNING))
                     .values(progress_json=_json(progress, "progress"), eta_s=eta))
        flag = conn.execute(select(T.c.cancel_requested, T.c.status).where(T.c.id == job_id)).first()
    return bool(flag and (flag[0] or flag[1] != str(JobStatus.RUNNING)))


def finish(job_id: str, worker: str, status: JobStatus, *, result: Any = None, error: str | None = None) -> bool:
    """Running → a final status, only if this worker still holds the job (a reaped job is not overwritten)."""
    values = dict(status=str(status), finished_at=time.time(), lease_until=None, error=error)
    if status == JobStatus.SUCCEEDED:
        values["result_json"] = _json(result, "result")
        values["eta_s"] = 0.0
    with db.get_engine().begin() as conn:
        return conn.execute(update(T).where(T.c.id == job_id, T.c.worker == worker,
                                            T.c.status == str(JobStatus.RUNNING)).values(**values)).rowcount == 1


def requeue(job_id: str, worker: str, why: str) -> bool:
    """Give a running job back to the queue (this process is shutting down and the job may run again)."""
    with db.get_engine().begin() as conn:
        return conn.execute(update(T).where(T.c.id == job_id, T.c.worker == worker,
                                            T.c.status == str(JobStatus.RUNNING), T.c.attempts < T.c.max_attempts)
                            .values(status=str(JobStatus.QUEUED), worker=None, lease_until=None, error=why,
                                    enqueued_at=time.time())).rowcount == 1


def heartbeat(worker: str, job_ids: list[str], lease_s: float) -> set[str]:
    """Extend this worker's leases; returns the ids someone asked to cancel (or that are no longer ours)."""
    if not job_ids:
        return set()
    now = time.time()
    with db.get_engine().begin() as conn:
        conn.execute(update(T).where(T.c.id.in_(job_ids), T.c.worker == worker, T.c.status == str(JobStatus.RUNNING))
                     .values(heartbeat_at=now, lease_until=now + lease_s))
        rows = conn.execute(select(T.c.id, T.c.status, T.c.worker, T.c.cancel_requested)
                            .where(T.c.id.in_(job_ids))).all()
    return {r[0] for r in rows if r[3] or r[1] != str(JobStatus.RUNNING) or r[2] != worker}


def request_cancel(job_id: str, by: str) -> JobStatus:
    """A queued job is cancelled at once; a running one is flagged and stops at its next progress report."""
    now = time.time()
    with db.get_engine().begin() as conn:
        row = conn.execute(select(T.c.status).where(T.c.id == job_id)).first()
        if row is None:
            raise JobError(f"no job with id {job_id!r}")
        status = JobStatus(row[0])
        if status.finished:
            raise JobError(f"job {job_id} has already {status} and cannot be cancelled")
        note = f"cancelled by {by}" if by else "cancelled"
        if conn.execute(update(T).where(T.c.id == job_id, T.c.status == str(JobStatus.QUEUED))
                        .values(status=str(JobStatus.CANCELLED), cancel_requested=True, finished_at=now,
                                error=note)).rowcount:
            return JobStatus.CANCELLED
        conn.execute(update(T).where(T.c.id == job_id, T.c.status == str(JobStatus.RUNNING))
                     .values(cancel_requested=True, error=note))
        return JobStatus.RUNNING


def reap(now: float | None = None) -> tuple[list[str], list[str]]:
    """Running jobs whose lease passed (their worker died): retried while attempts remain, else failed; a job asked
    to cancel is cancelled. Returns (ids to enqueue again, ids failed or cancelled). Safe on every replica at once."""
    now = now or time.time()
    retry: list[str] = []
    ended: list[str] = []
    with db.get_engine().connect() as conn:
        expired = conn.execute(select(T.c.id, T.c.attempts, T.c.max_attempts, T.c.cancel_requested, T.c.worker,
                                      T.c.heartbeat_at)
                               .where(T.c.status == str(JobStatus.RUNNING), T.c.lease_until < now)).all()
    for job_id, attempts, max_attempts, cancel, worker, beat in expired:
        lost = (f"the worker running it ({worker}) stopped answering"
                f"{f' {now - beat:.0f} s ago' if beat else ''}")
        still = and_(T.c.id == job_id, T.c.status == str(JobStatus.RUNNING), T.c.lease_until < now)
        with db.get_engine().begin() as conn:
            if cancel:
                won = conn.execute(update(T).where(still).values(
                    status=str(JobStatus.CANCELLED), finished_at=now, lease_until=None)).rowcount
                target = ended
            elif attempts < max_attempts:
                won = conn.execute(update(T).where(still).values(
                    status=str(JobStatus.QUEUED), worker=None, lease_until=None, enqueued_at=now,
                    error=f"retrying: {lost}")).rowcount
                target = retry
            else:
                won = conn.execute(update(T).where(still).values(
                    status=str(JobStatus.FAILED), finished_at=now, lease_until=None,
                    error=f"failed: {lost} (attempt {attempts} of {max_attempts})")).rowcount
                target = ended
        if won:
            target.append(job_id)
    return retry, ended


def stale_queued(older_than_s: float) -> list[str]:
    """Queued jobs nobody claimed for a while (their queue message was lost with a killed process): sent again.
    A second message for the same job is harmless, since only one claim can win."""
    now = time.time()
    with db.get_engine().begin() as conn:
        ids = [r[0] for r in conn.execute(select(T.c.id).where(
            T.c.status == str(JobStatus.QUEUED), T.c.enqueued_at < now - older_than_s,
            or_(T.c.run_after <= now, T.c.run_after.is_(None))))]
        if ids:
            conn.execute(update(T).where(T.c.id.in_(ids), T.c.status == str(JobStatus.QUEUED))
                         .values(enqueued_at=now))
    return ids
