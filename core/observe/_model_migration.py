"""Model migration as a calendar event: every priced model can carry a deprecation date and an owner; migrations
due soon are listed; `keel eval compare --model A --model B` is stored as a migration report (quality, cost,
latency p50/p95 per suite and segment), and each feature shows whether it is ready to move off a retiring model.

A report's progress is in its row, so every server process and a reloaded page see it. A page-started report is a
durable job (kind `migration_report`): any replica can cancel it, and one whose worker died is marked error by the
reaper, together with the eval runs it had started, instead of staying "running".
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import time
from enum import StrEnum

from sqlalchemy import func
from sqlmodel import col, select

from core import db, jobs
from core.errors import KeelError
from core.jobs import JobCancelled, JobContext
from core.tables import MigrationReport, ModelLifecycle, ModelPrice, RequestLog

DUE_WITHIN_DAYS = 90
JOB_KIND = "migration_report"


class MigrationError(KeelError, ValueError):
    """A lifecycle entry or migration report that cannot be stored; nothing was written."""


class Readiness(StrEnum):
    READY = "ready"  # a report shows the replacement at least as good on every suite of the feature
    REGRESSES = "regresses"  # a report shows the replacement worse beyond the suite's tolerance
    NO_REPORT = "no_report"  # no migration report from this model to its replacement covers the feature
    NO_SUITE = "no_suite"  # the feature has no eval suite that calls a model: nothing can tell
    NO_REPLACEMENT = "no_replacement"  # the lifecycle entry names no replacement yet


# -- lifecycle ------------------------------------------------------------------------------------------------------


def set_lifecycle(model: str, deprecation_date: str, owner: str, replacement: str | None = None) -> dict:
    """Give a priced model a deprecation date (YYYY-MM-DD) and an owner."""
    model, owner = str(model or "").strip(), str(owner or "").strip()
    with db.session() as s:
        priced = {p for p in s.exec(select(ModelPrice.model)).all()}
    if model not in priced:
        raise MigrationError(f"unknown model {model!r}: it is not in the price table ({', '.join(sorted(priced))})")
    try:
        when = dt.date.fromisoformat(str(deprecation_date).strip())
    except ValueError:
        raise MigrationError(f"deprecation date must be YYYY-MM-DD, not {deprecation_date!r}") from None
    if not owner or len(owner) > 255:
        raise MigrationError("a migration needs an owner (1-255 characters): who moves the features off it")
    replacement = (replacement or "").strip() or None
    if replacement and (len(replacement) > 128 or replacement == model):
        raise MigrationError("the replacement must be another model name of at most 128 characters")
    row = ModelLifecycle(model=model, deprecation_date=when.isoformat(), owner=owner, replacement=replacement,
                         updated_at=time.time())
    with db.session() as s:
        s.merge(row)
        s.commit()
    return row.model_dump()


def remove_lifecycle(model: str) -> bool:
    with db.session() as s:
        row = s.get(ModelLifecycle, model)
        if row is None:
            return False
        s.delete(row)
        s.commit()
        return True


def list_lifecycle(*, today: dt.date | None = None) -> list[dict]:
    today = today or dt.date.today()
    with db.session() as s:
        rows = s.exec(select(ModelLifecycle).order_by(ModelLifecycle.deprecation_date)).all()
    return [r.model_dump() | {"days_left": (dt.date.fromisoformat(r.deprecation_date) - today).days} for r in rows]


def migrations_due(within_days: int = DUE_WITHIN_DAYS, *, today: dt.date | None = None) -> list[dict]:
    """Lifecycle entries whose date is within `within_days` (overdue ones included), with the features still
    calling the model in the last 30 days and their readiness."""
    due = [r for r in list_lifecycle(today=today) if r["days_left"] <= within_days]
    readiness = feature_readiness()
    for r in due:
        r["features"] = [f for f in readiness if f["model"] == r["model"]]
    return due


def _model_part(name: str) -> str:
    return name.split("/", 1)[1] if "/" in name else name


# -- migration reports ------------------------------------------------------------------------------------------------


def check_models(models: list[str]) -> None:
    """Each compared model must be a tier or a provider/model the gateway knows."""
    from core.evals import EvalTargetError, RunOptions, llm_overrides

    if len(models) != 2 or models[0] == models[1]:
        raise MigrationError("a migration report compares exactly two different models: --model FROM --model TO")
    for m in models:
        try:
            llm_overrides(RunOptions(model=m, suite="compare"), "capable")
        except EvalTargetError as exc:
            raise MigrationError(str(exc)) from None


def migration_suites(suites: list[str] | None = None) -> list[str]:
    from core.evals import get_suite, load_suites

    if suites:
        for name in suites:
            if not get_suite(name).uses_model:
                raise MigrationError(f"suite {name} does not call a model; it cannot compare models")
        return list(suites)
    return [s.name for s in load_suites().values() if s.uses_model and s.fast]


def start_migration_report(model_from: str, model_to: str, suites: list[str] | None = None, *,
                           limit: int | None = None, created_by: str | None = None, background: bool = False) -> int:
    """Validate, store the report row, then run every suite for both models (on a thread when `background`)."""
    check_models([model_from, model_to])
    names = migration_suites(suites)
    if not names:
        raise MigrationError("no eval suite calls a model: nothing to compare")
    if limit is not None and limit < 1:
        raise MigrationError("--limit must be at least 1")
    row = MigrationReport(model_from=model_from, model_to=model_to, status="running", total=2 * len(names),
                          suites=json.dumps(names), created_by=created_by, created_at=time.time())
    with db.session() as s:
        s.add(row)
        s.commit()
        s.refresh(row)
        report_id = row.id
    if report_id is None:  # SQL assigns the id on insert
        raise MigrationError("the migration report was not stored: it got no id")
    if background:
        jobs.submit(JOB_KIND, {"report_id": report_id, "limit": limit}, owner=created_by or "",
                    label=f"migration report {report_id}: {model_from} → {model_to}", dedupe_key=str(report_id))
    else:
        run_migration_report(report_id, limit=limit)
    return report_id


def _report_lost(job) -> None:
    """The job ended without running to the end (its worker died, or it was cancelled before it started): the report
    and the eval runs this job created (their ids ride in its progress) are closed as error."""
    reason = f"stopped: {job.error or 'the worker running it stopped'}"
    close_migration_report(job.params.get("report_id"), reason)
    _close_runs(job.progress.get("run_ids") or [], reason)


@jobs.kind(JOB_KIND, on_lost=_report_lost)
def _report_job(ctx: JobContext, report_id: int, limit: int | None = None) -> dict:
    run_ids: list[int] = []

    def created(run_id: int) -> None:
        run_ids.append(int(run_id))
        ctx.progress(None, None, message=f"eval run {run_id} started", force=True, run_ids=run_ids)

    def progress(done, total, info) -> None:
        ctx.progress(done, total, message=f"case {info.get('case')}", run_ids=run_ids)

    try:
        report = run_migration_report(int(report_id), limit=limit, progress=progress, on_run=created)
    except BaseException as exc:
        _close_runs(run_ids, "stopped: cancelled" if isinstance(exc, JobCancelled)
                    else f"stopped: {exc or type(exc).__name__}")
        raise
    if report["status"] == "error":
        _close_runs(run_ids, f"stopped: {report['error']}")
        raise MigrationError(report["error"] or "the migration report stopped")  # the job shows it failed, and why
    return {"report_id": report["id"], "status": report["status"], "run_ids": run_ids}


def close_migration_report(report_id: int | None, reason: str) -> bool:
    """Mark a running report error with `reason`; False when it had already finished."""
    if report_id is None:
        return False
    with db.session() as s:
        row = s.get(MigrationReport, int(report_id))
        if row is None or row.status != "running":
            return False
    _save(int(report_id), status="error", error=reason[:2000], finished_at=time.time())
    return True


def _close_runs(run_ids: list, reason: str) -> None:
    from core.evals import close_run

    for run_id in run_ids:
        close_run(int(run_id), reason)


def run_migration_report(report_id: int, *, limit: int | None = None, progress=None, on_run=None) -> dict:
    from core.evals import get_run, get_suite, run_suite

    with db.session() as s:
        row = s.get(MigrationReport, report_id)
        if row is None:  # e.g. a queued job whose report was deleted meanwhile
            raise MigrationError(f"no migration report {report_id}")
        names, models, user = json.loads(row.suites), [row.model_from, row.model_to], row.created_by
    report: dict = {"suites": {}}
    try:
        done = 0
        for name in names:
            suite = get_suite(name)
            figures: dict[str, dict] = {}
            entry = {"feature": suite.feature, "tolerance": suite.tolerance, "models": figures}
            for model in models:
                run = run_suite(name, model=model, baseline=None, started_by=user, limit=limit, progress=progress,
                                on_run=on_run).run
                stored = get_run(run["id"])
                if stored is None:
                    raise MigrationError(f"eval run {run['id']} of suite {name} was deleted before it was read")
                figures[model] = _run_figures(stored)
                done += 1
                report["suites"][name] = entry
                _save(report_id, done=done, report=json.dumps(report))
        report["verdict"] = _verdict(report, models)
        _save(report_id, status="done", report=json.dumps(report), finished_at=time.time())
    except JobCancelled:
        _save(report_id, status="error", error="cancelled before every suite ran", report=json.dumps(report),
              finished_at=time.time())
        raise
    except Exception as exc:  # kept on the row: the page and CLI say why the report stopped
        logging.getLogger(__name__).exception("migration report %s stopped: %s", report_id, exc)
        _save(report_id, status="error", error=str(exc)[:2000], report=json.dumps(report), finished_at=time.time())
    return get_migration_report(report_id)


def _pct(values: list[float], p: float) -> float | None:
    values = sorted(values)
    if not values:
        return None
    return round(values[min(len(values) - 1, max(0, math.ceil(p / 100 * len(values)) - 1))], 3)


def _run_figures(run: dict) -> dict:
    """Quality, cost and latency of one run, overall and per segment."""
    segments: dict[str, list[dict]] = {}
    for r in run["results"].values():
        segments.setdefault(r["segment"], []).append(r)
    return {
        "run_id": run["id"], "status": run["status"], "score": run["score"], "cases": run["cases"],
        "cost_usd": run["cost_usd"], "latency_p50_ms": run["latency_p50_ms"], "latency_p95_ms": run["latency_p95_ms"],
        "segments": {seg: {"n": len(rows), "score": sum(bool(r["passed"]) for r in rows) / len(rows),
                           "cost_usd": round(sum(r["cost_usd"] for r in rows), 8),
                           "latency_p50_ms": _pct([r["latency_ms"] for r in rows], 50),
                           "latency_p95_ms": _pct([r["latency_ms"] for r in rows], 95)}
                     for seg, rows in sorted(segments.items())},
    }


def _verdict(report: dict, models: list[str]) -> dict:
    """Per suite: whether the target model keeps the quality (within the suite's tolerance)."""
    out = {}
    for name, entry in report["suites"].items():
        a, b = entry["models"].get(models[0], {}), entry["models"].get(models[1], {})
        if a.get("score") is None or b.get("score") is None:
            out[name] = "unknown"
        else:
            out[name] = "ok" if b["score"] >= a["score"] - entry["tolerance"] - 1e-9 else "regresses"
    return out


def _save(report_id: int, **values) -> None:
    db.update_row(MigrationReport, report_id, **values)


def get_migration_report(report_id: int) -> dict:
    with db.session() as s:
        row = s.get(MigrationReport, report_id)
    if row is None:
        raise MigrationError(f"no migration report {report_id}")
    return _report_dict(row)


def list_migration_reports(limit: int = 50) -> list[dict]:
    with db.session() as s:
        rows = s.exec(select(MigrationReport)
                      .order_by(col(MigrationReport.created_at).desc(), col(MigrationReport.id).desc())
                      .limit(limit)).all()
    return [_report_dict(r) for r in rows]


def _report_dict(row: MigrationReport) -> dict:
    d = row.model_dump()
    d["suites"] = json.loads(d["suites"])
    d["report"] = json.loads(d["report"] or "{}")
    return d


def report_rows(report: dict) -> list[dict]:
    """A report flattened: one row per suite × segment × model (segment "all" is the suite as a whole)."""
    rows = []
    for suite, entry in report["report"].get("suites", {}).items():
        for model, fig in entry["models"].items():
            rows.append({"suite": suite, "segment": "all", "model": model, "score": fig["score"], "n": fig["cases"],
                         "cost_usd": fig["cost_usd"], "latency_p50_ms": fig["latency_p50_ms"],
                         "latency_p95_ms": fig["latency_p95_ms"]})
            for seg, s in fig["segments"].items():
                rows.append({"suite": suite, "segment": seg, "model": model, "score": s["score"], "n": s["n"],
                             "cost_usd": s["cost_usd"], "latency_p50_ms": s["latency_p50_ms"],
                             "latency_p95_ms": s["latency_p95_ms"]})
    return rows


# -- readiness ------------------------------------------------------------------------------------------------------


def feature_readiness(days: float = 30.0) -> list[dict]:
    """For every model with a lifecycle entry and every feature that called it in the last `days`: is the feature
    ready to move to the replacement? Read from the newest finished report between the two models."""
    from core.evals import load_suites

    since = time.time() - days * 86400
    with db.session() as s:
        entries = s.exec(select(ModelLifecycle)).all()
        used = s.exec(select(RequestLog.model, RequestLog.feature, func.count()).where(
            RequestLog.created_at >= since, RequestLog.feature != "eval")
            .group_by(RequestLog.model, RequestLog.feature)).all()
        reports = s.exec(select(MigrationReport).where(MigrationReport.status == "done")
                         .order_by(col(MigrationReport.created_at).desc(), col(MigrationReport.id).desc())).all()
    suites_by_feature: dict[str, list[str]] = {}
    for suite in load_suites().values():
        if suite.uses_model:
            suites_by_feature.setdefault(suite.feature, []).append(suite.name)
    out = []
    for entry in entries:
        for model, feature, calls in used:
            if model != entry.model:
                continue
            suites = suites_by_feature.get(feature, [])
            row = {"model": entry.model, "feature": feature, "calls": int(calls), "replacement": entry.replacement,
                   "deprecation_date": entry.deprecation_date, "owner": entry.owner, "report_id": None,
                   "suites": suites}
            if not entry.replacement:
                row["readiness"] = Readiness.NO_REPLACEMENT
            elif not suites:
                row["readiness"] = Readiness.NO_SUITE
            else:
                report = next((r for r in reports if _model_part(r.model_from) == entry.model
                               and _model_part(r.model_to) == _model_part(entry.replacement)
                               and set(suites) & set(json.loads(r.suites))), None)
                if report is None:
                    row["readiness"] = Readiness.NO_REPORT
                else:
                    verdict = json.loads(report.report).get("verdict", {})
                    mine = [verdict.get(name) for name in suites if name in verdict]
                    row["report_id"] = report.id
                    row["readiness"] = Readiness.READY if mine and all(v == "ok" for v in mine) else (
                        Readiness.REGRESSES if "regresses" in mine else Readiness.NO_REPORT)
            row["readiness"] = str(row["readiness"])
            out.append(row)
    return sorted(out, key=lambda r: (r["deprecation_date"], r["model"], r["feature"]))
