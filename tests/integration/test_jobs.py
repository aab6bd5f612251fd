"""Durable jobs on SQLite and PostgreSQL: progress, results and errors in SQL; cancel from anywhere; a job whose
worker died (its lease lapsed) is retried while attempts remain and failed after, never left running."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from core import db, jobs
from core.jobs import JobError, JobStatus
from core.tables import JobRow
from tests.conftest import wait_until

_gate = threading.Event()


@jobs.kind("test_steps")
def _steps(ctx, n: int, sleep: float = 0.02, fail_at: int | None = None) -> dict:
    for i in range(n):
        if fail_at == i:
            raise RuntimeError(f"step {i} broke")
        ctx.progress(i, n, message=f"step {i}", force=True)
        time.sleep(sleep)
    ctx.progress(n, n, message="done")
    return {"steps": n}


@jobs.kind("test_retryable", max_attempts=2)
def _retryable(ctx, marker: str) -> dict:
    return {"marker": marker, "attempt": ctx.attempt}


def test_a_job_reports_progress_eta_and_result(database):
    job_id, created = jobs.submit("test_steps", {"n": 40, "sleep": 0.05}, owner="alice", label="forty steps")
    assert created
    seen = wait_until(lambda: (j := jobs.get(job_id)).status == JobStatus.RUNNING and j.progress.get("done") and j,
                      timeout=20)
    assert seen.worker == jobs.WORKER_ID and seen.progress["total"] == 40 and seen.eta_s is not None
    done = jobs.wait(job_id, 30)
    assert done.status == JobStatus.SUCCEEDED and done.result == {"steps": 40} and done.fraction == 1.0
    assert done.attempts == 1 and done.finished_at >= done.started_at and done.owner == "alice"
    assert [j.id for j in jobs.list_jobs(status=["succeeded"])] == [job_id]


def test_a_failing_job_keeps_its_error(database):
    job_id, _ = jobs.submit("test_steps", {"n": 5, "fail_at": 2})
    job = jobs.wait(job_id, 20)
    assert job.status == JobStatus.FAILED and "RuntimeError: step 2 broke" in job.error


def test_cancel_a_running_job_and_a_queued_one(database):
    running, _ = jobs.submit("test_steps", {"n": 400, "sleep": 0.05})
    wait_until(lambda: jobs.get(running).status == JobStatus.RUNNING, timeout=20)
    assert jobs.cancel(running, by="bob") == JobStatus.RUNNING  # flagged; stops at its next report
    job = jobs.wait(running, 20)
    assert job.status == JobStatus.CANCELLED and "bob" in job.error and job.progress["done"] < 399
    delayed, _ = jobs.submit("test_steps", {"n": 1}, delay_s=60)
    assert jobs.cancel(delayed) == JobStatus.CANCELLED and jobs.get(delayed).status == JobStatus.CANCELLED
    with pytest.raises(JobError, match="already cancelled"):
        jobs.cancel(delayed)


def test_bad_input_gets_clear_errors(database):
    with pytest.raises(JobError, match="unknown job kind 'nope'"):
        jobs.submit("nope", {})
    with pytest.raises(JobError, match="must be JSON"):
        jobs.submit("test_steps", {"n": float("nan")})
    with pytest.raises(JobError, match="no job with id"):
        jobs.get("missing")
    with pytest.raises(JobError, match="unknown job status"):
        jobs.list_jobs(status=["runing"])
    with pytest.raises(JobError, match="delay_s"):
        jobs.submit("test_steps", {"n": 1}, delay_s=-1)


def _as_if_dead(job_id: str, attempts: int) -> None:
    """Make the row look like a worker on another machine claimed it and then vanished."""
    with db.get_engine().begin() as conn:
        conn.execute(update(JobRow.__table__).where(JobRow.__table__.c.id == job_id).values(
            status="running", worker="ghost:1:dead", attempts=attempts, started_at=time.time() - 60,
            heartbeat_at=time.time() - 60, lease_until=time.time() - 1))


def test_a_dead_workers_job_is_retried_then_failed_never_left_running(database):
    from core.jobs import _store

    # A job whose worker died on its only attempt: failed, with the cause.
    job_id, _ = jobs.submit("test_steps", {"n": 1}, delay_s=3600)
    _as_if_dead(job_id, attempts=1)
    jobs.housekeeping()
    job = jobs.get(job_id)
    assert job.status == JobStatus.FAILED and "ghost:1:dead" in job.error and "stopped answering" in job.error
    # A retryable one: queued again and run to the end by a live worker, as attempt 2.
    job_id, _ = jobs.submit("test_retryable", {"marker": "m"}, delay_s=3600)
    _as_if_dead(job_id, attempts=1)
    jobs.housekeeping()
    job = jobs.wait(job_id, 20)
    assert job.status == JobStatus.SUCCEEDED and job.result == {"marker": "m", "attempt": 2} and job.attempts == 2
    # Two replicas reaping at once: exactly one wins.
    job_id, _ = jobs.submit("test_steps", {"n": 1}, delay_s=3600)
    _as_if_dead(job_id, attempts=1)
    results = []
    threads = [threading.Thread(target=lambda: results.append(_store.reap())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(len(ended) for _retry, ended in results) == 1


def test_cli_lists_and_cancels_jobs(database, monkeypatch):
    job_id, _ = jobs.submit("test_steps", {"n": 1}, owner="carol", label="cli job", delay_s=3600)
    env = {**__import__("os").environ}
    out = subprocess.run([sys.executable, "-m", "core.cli", "jobs", "--json"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    listed = {j["id"]: j for j in json.loads(out.stdout)}
    assert listed[job_id]["status"] == "queued" and listed[job_id]["owner"] == "carol"
    out = subprocess.run([sys.executable, "-m", "core.cli", "jobs", "cancel", job_id], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0 and "cancelled" in out.stdout
    assert jobs.get(job_id).status == JobStatus.CANCELLED
    out = subprocess.run([sys.executable, "-m", "core.cli", "jobs", "cancel", "nosuchjob"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 2 and "no job with id" in out.stderr


def test_search_sync_runs_as_a_job_with_progress_and_report(database, tmp_path):
    from core.search import current_sync, forget_tables, start_background_sync

    forget_tables()
    root = tmp_path / "docs"
    root.mkdir()
    for i in range(3):
        (root / f"note{i}.md").write_text(f"---\ntitle: Note {i}\naccess_groups: [all-staff]\nclearance_level: 0\n"
                                          f"---\nThe bike shed is painted colour number {i}.\n")
    job = start_background_sync(root, started_by="ivan", allowed_roots=[tmp_path])
    again = start_background_sync(root, started_by="erin", allowed_roots=[tmp_path])
    assert again.id == job.id  # one sync at a time, whoever asks
    finished = jobs.wait(job.id, 180)
    assert finished.status == JobStatus.SUCCEEDED, finished.error
    view = current_sync()
    assert view.id == job.id and not view.running and view.started_by == "ivan"
    assert len(view.report.added) == 3 and view.progress.total == 3 and "3 added" in view.report.summary()
    forget_tables()


from tests.integration.test_evals import eval_env, servers  # noqa: E402,F401  (fixtures: loopback model servers)


def test_eval_runs_from_the_page_are_jobs_and_a_lost_one_never_stays_running(eval_env):
    from core.evals import background_status, list_runs, start_background_run
    from core.tables import EvalRun

    assert start_background_run("qa", started_by="alice") is True
    assert start_background_run("qa", started_by="bob") is False  # one run per suite at a time, any replica
    job_id = background_status()["qa"]["job_id"]
    job = jobs.wait(job_id, 120)
    assert job.status == JobStatus.SUCCEEDED and job.result["status"] == "passed" and job.progress["done"] == 4
    assert background_status()["qa"]["running"] is False and list_runs("qa")[0]["status"] == "passed"
    assert job.progress["run_id"] == list_runs("qa")[0]["id"]  # the job records the eval_run it created
    # A run whose worker died: the job fails by its lease, and the eval_run row it left is closed as error.
    job_id, _ = jobs.submit("eval_run", {"suite": "qa", "started_by": "carol"}, delay_s=3600)
    _as_if_dead(job_id, attempts=1)
    with db.session() as s:
        lost = EvalRun(suite="qa", started_at=time.time() - 30, status="running", cases=4, started_by="carol")
        cli = EvalRun(suite="qa", started_at=time.time() - 5, status="running", cases=4, started_by="dave")
        s.add(lost)
        s.add(cli)
        s.commit()
        lost_id, cli_id = lost.id, cli.id
    with db.get_engine().begin() as conn:  # what the dead worker had reported before it vanished
        conn.execute(update(JobRow.__table__).where(JobRow.__table__.c.id == job_id).values(
            progress_json=json.dumps({"done": 1, "total": 4, "run_id": lost_id})))
    jobs.housekeeping()
    assert jobs.get(job_id).status == JobStatus.FAILED
    by_id = {r["id"]: r["status"] for r in list_runs("qa")}
    assert by_id[lost_id] == "error"
    assert by_id[cli_id] == "running"  # a CLI run of the same suite started after the job is not this job's


def test_a_page_review_runs_as_a_job_and_returns_the_same_result(database):
    from core.review import (DEMO_REPO, ReviewOptions, get_sample, review_diff, review_job_error, review_job_result,
                             submit_review)

    diff = get_sample("01_sql_injection").diff
    request = {"kind": "diff", "diff": diff.encode(), "repo": str(DEMO_REPO), "label": "sql"}
    job = jobs.wait(submit_review(request, use_llm=False, use_cache=False, user="alice"), 120)
    assert job.status == JobStatus.SUCCEEDED and job.kind == "review" and job.owner == "alice"
    result = review_job_result(job)
    direct = review_diff(diff, DEMO_REPO, ReviewOptions(use_llm=False, use_cache=False))
    assert result.verdict == direct.verdict and result.diff_text == direct.diff_text
    assert {(c.path, c.line, c.rule) for c in result.comments} == {(c.path, c.line, c.rule) for c in direct.comments}
    assert any(c.category == "security" for c in result.comments)
    # A review the agent refuses: the page gets the ReviewError's own words, no internal name.
    bad = {"kind": "diff", "diff": diff, "repo": "/etc", "label": "outside"}
    job = jobs.wait(submit_review(bad, use_llm=False, use_cache=False, user="alice"), 60)
    assert job.status == JobStatus.FAILED and review_job_result(job) is None
    message = review_job_error(job)
    assert message and "Error" not in message.split(" ")[0] and "internal problem" not in message



def test_the_review_page_stops_waiting_when_no_worker_picks_the_review_up(database, monkeypatch):
    from core.review import DEMO_REPO, ReviewError, get_sample, submit_review, wait_for_review
    from core.review._jobs import wait_limit_s

    monkeypatch.setenv("KEEL_JOB_WORKERS", "0")  # no replica runs jobs: the review stays queued
    request = {"kind": "diff", "diff": get_sample("01_sql_injection").diff, "repo": str(DEMO_REPO), "label": "sql"}
    job_id = submit_review(request, use_llm=False, use_cache=False, user="alice")
    polled = []
    started = time.monotonic()
    with pytest.raises(ReviewError, match="No worker picked this review up within 2 s"):
        wait_for_review(job_id, timeout_s=2, on_poll=polled.append)
    assert 2 <= time.monotonic() - started < 10 and polled
    assert jobs.get(job_id).status == JobStatus.CANCELLED  # not left to run later for nobody
    assert wait_limit_s() == 150 + 60  # the review's own time budget plus a minute

from tests.integration.test_support_db import HANA, llm  # noqa: E402,F401  (fixture: loopback model + demo company)


def test_the_handoff_summary_is_a_delayed_job_any_replica_can_run(llm, monkeypatch):
    from core.support import _console, get_handoff, open_conversation, send_message
    from tests.integration.test_support_db import ANSWER

    monkeypatch.setattr(_console, "SUMMARY_DELAY_S", 1.0)
    conv = open_conversation(HANA)
    t0 = time.time()
    send_message(conv.id, HANA, "I was charged twice for INV-2026-0008, I want a refund", summarize_async=True)
    assert get_handoff(conv.id).summary_source == "extractive"  # the handoff shows at once
    [job] = jobs.list_jobs(kind="support_summary")
    assert job.params == {"conversation_id": conv.id} and job.status == JobStatus.QUEUED
    done = jobs.wait(job.id, 60)
    assert done.status == JobStatus.SUCCEEDED and done.result["improved"] is True
    assert done.started_at - t0 >= 0.9  # not before its delay
    h = get_handoff(conv.id)
    assert h.summary_source == "llm" and h.summary == ANSWER


def test_concurrent_submits_with_one_dedupe_key_make_one_job(database):
    """Eight threads (as eight replicas would) submit the same keyed job at once, five times over: one job each time,
    and the database itself refuses a second active row with that key."""
    for round_ in range(5):
        key = f"same-folder-{round_}"
        barrier = threading.Barrier(8)
        results: list[tuple[str, bool]] = []
        errors: list[BaseException] = []

        def submit():
            barrier.wait()
            try:
                results.append(jobs.submit("test_steps", {"n": 1}, dedupe_key=key, delay_s=600))
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=submit) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
        ids = {job_id for job_id, _ in results}
        assert len(results) == 8 and len(ids) == 1, f"round {round_}: {len(ids)} jobs for one key"
        assert sum(created for _, created in results) == 1
    with db.get_engine().connect() as conn:
        active = conn.execute(select(func.count()).select_from(JobRow).where(
            JobRow.dedupe_key == "same-folder-0", JobRow.status.in_(["queued", "running"]))).scalar()
    assert active == 1
    row = jobs.get(next(iter(ids)))
    with pytest.raises(IntegrityError), db.get_engine().begin() as conn:
        conn.execute(insert(JobRow.__table__).values(
            id="dup" * 5, kind=row.kind, target="x:y", label="", owner="", dedupe_key=key,
            status="queued", params_json="{}", progress_json="{}", attempts=0, max_attempts=1,
            cancel_requested=False, created_at=time.time(), enqueued_at=time.time(), run_after=0.0))


def test_an_eval_job_queued_before_the_ops_split_still_runs(eval_env):
    """Rows queued by the old release name `core.ops…`; after the upgrade they run from the module's new home."""
    job_id, _ = jobs.submit("eval_run", {"suite": "qa", "started_by": "erin"}, delay_s=3600)
    with db.get_engine().begin() as conn:
        conn.execute(update(JobRow.__table__).where(JobRow.__table__.c.id == job_id).values(
            target="core.ops._eval_jobs:run_eval"))
    from core.jobs import _runner
    assert _runner.resolve("eval_run", "core.ops._eval_jobs:run_eval").target == "core.evals._jobs:run_eval"
    with pytest.raises(JobError, match="no job kind"):  # a moved module does not make any old function name valid
        _runner.resolve("eval_run", "core.ops._eval_jobs:something_else")
    _runner.execute(job_id)
    job = jobs.get(job_id)
    assert job.status == JobStatus.SUCCEEDED and job.result["status"] == "passed"
