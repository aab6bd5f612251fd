"""Offline evals: suites of JSON-lines cases run through the same core calls the features make, scored, stored,
and compared with a baseline run case by case, so a prompt or model change that makes things worse is caught.

A suite (in `data/evals/suites.toml`) names a dataset, a target (what to call) and scorers. Cases collected at run
time (review queue, support escalations) run in their own segments, labelled by source, outside the gated score.
"""

from __future__ import annotations

import json
import math
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from core import db
from core.config import REPO_ROOT, get_settings
from core.errors import KeelError
from core.evals._scorers import SCORERS, ScoreResult
from core.evals._targets import EvalTargetError, RunOptions, TargetOutput, get_target
from core.tables import EvalCase, EvalResult, EvalRun

DEFAULT_SUITES_FILE = REPO_ROOT / "data" / "evals" / "suites.toml"
MAX_CASES = 5000


class RunStatus(StrEnum):
    """An eval run's state (stored as text in `eval_run.status`); only a passed run can become a baseline."""

    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"


class EvalError(KeelError, ValueError):
    """A suite, dataset, baseline or option that cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class Suite:
    name: str
    feature: str
    description: str
    target: str
    dataset: Path
    scorers: tuple[str, ...]
    where: dict = field(default_factory=dict)  # case fields that must match (e.g. split = "test")
    segment_by: str | None = None  # a case field whose value names the case's segment
    tolerance: float = 0.02  # allowed drop of the score against the baseline
    min_score: float | None = None  # a floor the score must reach whatever the baseline
    fast: bool = True  # finishes in a few minutes: CI runs it
    uses_model: bool = False  # the target calls an LLM, so --model and `eval compare` apply
    max_latency_ms: float | None = None
    max_cost_usd: float | None = None
    options: dict = field(default_factory=dict)  # passed to the target (task id, k, tier, ...)
    # segment name → another dataset run in that segment outside the gated score (e.g. a test set written by
    # another hand); a file that is not there is skipped
    extra_datasets: dict[str, Path] = field(default_factory=dict)


@dataclass
class EvalCaseInput:
    id: str
    input: str
    expected: dict
    segment: str
    source: str  # dataset | review_queue | support_escalation | manual
    fields: dict


@dataclass
class RunReport:
    run: dict
    regressions: list[dict]
    improvements: list[dict]
    segments: dict[str, dict]
    message: str

    @property
    def failed(self) -> bool:
        return self.run["status"] in (RunStatus.FAILED, RunStatus.ERROR)


# --- Suites and cases ------------------------------------------------------------------------------------------


def suites_file() -> Path:
    return Path(get_settings().eval_suites_file or DEFAULT_SUITES_FILE)


def load_suites(path: Path | None = None) -> dict[str, Suite]:
    path = Path(path or suites_file())
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvalError(f"no eval suites file at {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise EvalError(f"{path}: not valid TOML: {exc}") from None
    suites = {}
    for name, spec in raw.items():
        if not isinstance(spec, dict):
            raise EvalError(f"{path}: [{name}] must be a table")
        unknown_scorers = [s for s in spec.get("scorers", []) if s not in SCORERS]
        if unknown_scorers:
            raise EvalError(f"{path}: suite {name} names unknown scorers {unknown_scorers}; known: {sorted(SCORERS)}")
        if not isinstance(spec.get("target"), str):
            raise EvalError(f"{path}: suite {name} needs a target (a string such as \"llm.chat\"), "
                            f"not {spec.get('target')!r}")
        try:
            get_target(spec["target"])
        except EvalTargetError as exc:
            raise EvalError(f"{path}: suite {name} names {exc}") from None
        tolerance, floor = _fraction(path, name, spec, "tolerance", 0.02), _floor(path, name, spec)
        dataset = Path(spec.get("dataset", ""))
        suites[name] = Suite(
            name=name, feature=str(spec.get("feature", name)), description=str(spec.get("description", "")),
            target=spec["target"], dataset=dataset if dataset.is_absolute() else path.parent / dataset,
            scorers=tuple(spec.get("scorers", ())), where=dict(spec.get("where", {})),
            segment_by=spec.get("segment_by"), tolerance=tolerance,
            min_score=floor, fast=bool(spec.get("fast", True)),
            uses_model=bool(spec.get("uses_model", False)), max_latency_ms=spec.get("max_latency_ms"),
            max_cost_usd=spec.get("max_cost_usd"), options=dict(spec.get("options", {})),
            extra_datasets={str(seg): Path(p) if Path(p).is_absolute() else path.parent / p
                            for seg, p in dict(spec.get("extra_datasets", {})).items()},
        )
    return suites


def _fraction(path: Path, name: str, spec: dict, key: str, default: float | None = None) -> float:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise EvalError(f"{path}: suite {name}: {key} must be a number from 0 to 1, not {value!r}")
    return float(value)


def _floor(path: Path, name: str, spec: dict) -> float:
    """Every suite needs a floor: tolerance alone lets a score drift down one tolerance per run."""
    if "min_score" not in spec:
        raise EvalError(f"{path}: suite {name} has no floor: set min_score (0 to 1), the score every run must "
                        "reach whatever its baseline (a little below the checked-in baseline's score)")
    return _fraction(path, name, spec, "min_score")


def get_suite(name: str) -> Suite:
    suites = load_suites()
    if name not in suites:
        raise EvalError(f"unknown eval suite {name!r}; known suites: {', '.join(sorted(suites))}")
    return suites[name]


def load_cases(suite: Suite, *, include_collected: bool = True) -> list[EvalCaseInput]:
    """The suite's dataset cases, then the cases collected for it in SQL (their own segments, by source)."""
    cases = []
    try:
        lines = suite.dataset.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise EvalError(f"suite {suite.name}: dataset {suite.dataset} does not exist") from None
    except UnicodeDecodeError:
        raise EvalError(f"suite {suite.name}: dataset {suite.dataset} is not UTF-8 text") from None
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalError(f"{suite.dataset}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise EvalError(f"{suite.dataset}:{number}: each line must be a JSON object")
        if any(record.get(k) != v for k, v in suite.where.items()):
            continue
        case = _dataset_case(suite, record, number)
        if case.id in seen:
            raise EvalError(f"{suite.dataset}:{number}: case id {case.id!r} appears twice")
        seen.add(case.id)
        cases.append(case)
    for segment, extra in suite.extra_datasets.items():
        cases.extend(_extra_cases(suite, segment, extra))
    if include_collected:
        with db.session() as session:
            rows = session.exec(select(EvalCase).where(EvalCase.suite == suite.name).order_by(col(EvalCase.id))).all()
        for row in rows:
            cases.append(EvalCaseInput(
                id=f"{row.source}:{row.id}", input=row.input_text, expected=json.loads(row.expected or "{}"),
                segment=f"collected: {row.source}", source=row.source, fields={"notes": row.notes},
            ))
    if len(cases) > MAX_CASES:
        raise EvalError(f"suite {suite.name} has {len(cases)} cases; the limit is {MAX_CASES}")
    return cases


def _extra_cases(suite: Suite, segment: str, path: Path) -> list[EvalCaseInput]:
    """One extra dataset's cases, all in `segment`, source "extra_dataset" (so outside the gated score)."""
    if not path.is_file():
        return []
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise EvalError(f"{path}:{number}: each line must be a JSON object")
        case = _dataset_case(suite, record, number)
        cases.append(EvalCaseInput(id=f"{segment}:{case.id}", input=case.input, expected=case.expected,
                                   segment=segment, source="extra_dataset", fields=record))
    return cases


def _dataset_case(suite: Suite, record: dict, number: int) -> EvalCaseInput:
    text = record.get("input", record.get("text"))
    if not isinstance(text, str):
        raise EvalError(f"{suite.dataset}:{number}: a case needs an 'input' (or 'text') string")
    expected = record.get("expected")
    if expected is None:  # labelled sets carry the label at top level
        expected = {k: record[k] for k in ("label", "route", "intent") if k in record}
    if not isinstance(expected, dict) or not expected:
        raise EvalError(f"{suite.dataset}:{number}: a case needs an 'expected' object (or a 'label')")
    segment = str(record.get(suite.segment_by, "")) if suite.segment_by else ""
    return EvalCaseInput(id=str(record.get("id") or f"line-{number}"), input=text, expected=expected,
                         segment=segment or "all", source="dataset", fields=record)


def saved_id(row_id: int | None) -> int:
    """A stored row's id: SQL assigns it on insert, so None means the row was never saved (a bug, said clearly)."""
    if row_id is None:
        raise EvalError("the row has no id: it was never saved")
    return row_id


# --- Running -----------------------------------------------------------------------------------------------------

Progress = Callable[[int, int, dict], None]


def run_suite(name: str, *, model: str | None = None, prompt_version: str | None = None,
              baseline: str | int | None = "auto", include_collected: bool = True, limit: int | None = None,
              progress: Progress | None = None, started_by: str | None = None,
              on_run: Callable[[int], None] | None = None) -> RunReport:
    """Run one suite, store every result, compare with the baseline and decide pass or fail. `on_run(id)` hears
    the new eval_run row's id before any case runs (a job records it to close exactly that run if lost)."""
    suite = get_suite(name)
    if model and not suite.uses_model:
        raise EvalError(f"suite {suite.name} does not call a model (target {suite.target}); --model does not apply")
    cases = load_cases(suite, include_collected=include_collected)
    if limit is not None:
        cases = cases[: max(0, limit)]
    if not cases:
        raise EvalError(f"suite {suite.name} has no cases")
    options = RunOptions(model=model, prompt_version=prompt_version, suite=suite.name, settings=suite.options)
    target = get_target(suite.target)
    try:
        target.prepare(options)
    except EvalTargetError as exc:
        raise EvalError(f"suite {suite.name}: {exc}") from None
    model_label = model or target.model_label(options)
    baseline_run = resolve_baseline(suite, baseline, model=model_label)  # "auto": the newest passed run, this model
    run = EvalRun(suite=suite.name, model=model_label,
                  prompt_version=target.prompt_label(options) if prompt_version else None,
                  started_at=time.time(), cases=len(cases),
                  baseline_run_id=baseline_run.get("id") if baseline_run else None,
                  baseline_score=baseline_run.get("score") if baseline_run else None, started_by=started_by)
    with db.session() as session:
        session.add(run)
        session.commit()
        session.refresh(run)
        run_id = saved_id(run.id)
    if on_run:
        on_run(run_id)
    results: list[dict] = []
    passed = 0
    for index, case in enumerate(cases, 1):
        result = _run_case(suite, target, case, options)
        results.append(result)
        passed += result["passed"]
        with db.session() as session:
            session.add(EvalResult(run_id=run_id, **result))
            session.commit()
        if progress:
            progress(index, len(cases), {"case": case.id, "passed": result["passed"], "so_far": passed})
    return _finish(run_id, suite, results, baseline_run)


def _run_case(suite: Suite, target, case: EvalCaseInput, options: RunOptions) -> dict:
    started = time.perf_counter()
    error = None
    try:
        out: TargetOutput = target.run(case, options)
    except EvalTargetError as exc:  # the case could not run (bad input, LLM error): it fails, visibly
        out = TargetOutput(output={}, text="", latency_ms=(time.perf_counter() - started) * 1000)
        error = str(exc)[:2000]
    scores: dict[str, dict] = {}
    for scorer_name in suite.scorers:
        verdict: ScoreResult | None = SCORERS[scorer_name](case.expected, out, suite)
        if verdict is not None:
            scores[scorer_name] = {"score": verdict.score, "passed": verdict.passed, "why": verdict.why}
    if error is None and not scores:
        error = f"no scorer of this suite ({', '.join(suite.scorers)}) applies to the case's expected fields"
    ok = error is None and all(s["passed"] for s in scores.values())
    mean = sum(s["score"] for s in scores.values()) / len(scores) if scores and error is None else 0.0
    return dict(case_id=case.id[:128], segment=case.segment[:64], source=case.source, passed=ok, score=round(mean, 6),
                input_text=case.input[:20_000], expected=json.dumps(case.expected, ensure_ascii=False),
                output=json.dumps(out.output, ensure_ascii=False, default=str)[:20_000], scores=json.dumps(scores),
                latency_ms=out.latency_ms, cost_usd=out.cost_usd, error=error, branch=_branch_of(out))


def _branch_of(out: TargetOutput) -> str | None:
    """The agent branch the case took, when the target reports one (branch coverage reads it)."""
    branch = out.output.get("branch") if isinstance(out.output, dict) else None
    return str(branch)[:48] if branch else None


def _finish(run_id: int, suite: Suite, results: list[dict], baseline_run: dict | None) -> RunReport:
    curated = [r for r in results if r["source"] == "dataset"]
    score = sum(r["passed"] for r in curated) / len(curated) if curated else None
    segments = segment_table(results)
    scorer_means = _scorer_means(results)
    latencies = sorted(r["latency_ms"] for r in results)
    baseline_results = baseline_run.get("results", {}) if baseline_run else {}
    regressions = [r for r in results if baseline_results.get(r["case_id"], {}).get("passed") and not r["passed"]]
    improvements = [r for r in results
                    if r["case_id"] in baseline_results and not baseline_results[r["case_id"]].get("passed") and r["passed"]]
    status, message = _verdict(suite, score, baseline_run, len(regressions))
    summary = {"segments": segments, "scorers": scorer_means, "message": message,
               "improvements": [r["case_id"] for r in improvements],
               "baseline_segments": baseline_run.get("segments", {}) if baseline_run else {}}
    with db.session() as session:
        run = session.get(EvalRun, run_id)
        if run is None:
            raise EvalError(f"eval run {run_id} was deleted while it ran; its results are not recorded")
        run.finished_at = time.time()
        run.status, run.score, run.regressions = status, score, len(regressions)
        run.cost_usd = round(sum(r["cost_usd"] for r in results), 8)
        run.latency_p50_ms, run.latency_p95_ms = _pct(latencies, 50), _pct(latencies, 95)
        run.summary = json.dumps(summary)
        session.add(run)
        session.commit()
        session.refresh(run)
        run_dict = run.model_dump()
    return RunReport(run=run_dict, regressions=regressions, improvements=improvements, segments=segments,
                     message=message)


def _verdict(suite: Suite, score: float | None, baseline_run: dict | None,
             regressions: int) -> tuple[RunStatus, str]:
    if score is None:
        return RunStatus.ERROR, "no curated cases ran"
    if suite.min_score is not None and score < suite.min_score:
        return RunStatus.FAILED, f"score {score:.1%} is below the suite's floor {suite.min_score:.1%}"
    if baseline_run and baseline_run.get("score") is not None:
        drop = baseline_run["score"] - score
        if drop > suite.tolerance + 1e-9:
            return RunStatus.FAILED, (f"score {score:.1%} dropped {drop:.1%} from baseline {baseline_run['score']:.1%} "
                              f"(tolerance {suite.tolerance:.1%}); {regressions} case(s) regressed")
        return RunStatus.PASSED, (f"score {score:.1%} vs baseline {baseline_run['score']:.1%} "
                          f"(tolerance {suite.tolerance:.1%}); {regressions} case(s) regressed")
    return RunStatus.PASSED, f"score {score:.1%}; no baseline to compare with"


def segment_table(results: list[dict]) -> dict[str, dict]:
    table: dict[str, dict] = {}
    for r in results:
        seg = table.setdefault(r["segment"], {"n": 0, "passed": 0, "source": r["source"]})
        seg["n"] += 1
        seg["passed"] += int(bool(r["passed"]))
    for seg in table.values():
        seg["score"] = seg["passed"] / seg["n"]
    return dict(sorted(table.items()))


def _scorer_means(results: list[dict]) -> dict[str, dict]:
    sums: dict[str, list[float]] = {}
    for r in results:
        for name, s in json.loads(r["scores"]).items():
            acc = sums.setdefault(name, [0.0, 0.0, 0])
            acc[0] += s["score"]
            acc[1] += 1 if s["passed"] else 0
            acc[2] += 1
    return {k: {"mean": v[0] / v[2], "pass_rate": v[1] / v[2], "n": v[2]} for k, v in sums.items()}


def _pct(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, math.ceil(p / 100 * len(sorted_values)) - 1))
    return round(sorted_values[index], 3)


# --- Baselines, stored runs, exports ------------------------------------------------------------------------------


def resolve_baseline(suite: Suite, baseline: str | int | None, *, model: str | None = None) -> dict | None:
    """`auto`: the suite's newest *passed* run of the same model, else the baseline file checked into the repo;
    a run id; a path to an exported run (JSON); or None for no comparison.

    A failed run never becomes the automatic baseline: otherwise running a regressed change twice would pass."""
    if baseline is None or baseline == "none":
        return None
    if baseline == "auto":
        with db.session() as session:
            stmt = (select(EvalRun).where(EvalRun.suite == suite.name, EvalRun.status == RunStatus.PASSED)
                    .order_by(col(EvalRun.started_at).desc(), col(EvalRun.id).desc()))
            if model:
                stmt = stmt.where(EvalRun.model == model)
            found = session.exec(stmt.limit(1)).first()
        if found is not None:
            return get_run(saved_id(found.id))
        checked_in = baseline_file(suite.name)
        return load_run_file(checked_in) if checked_in.is_file() else None
    if isinstance(baseline, int) or (isinstance(baseline, str) and baseline.isdigit()):
        run = get_run(int(baseline))
        if run is None:
            raise EvalError(f"no eval run with id {baseline}")
        if run["suite"] != suite.name:
            raise EvalError(f"run {baseline} is of suite {run['suite']}, not {suite.name}")
        return run
    path = Path(str(baseline))
    if not path.is_file():
        raise EvalError(f"baseline {baseline!r} is neither a run id nor a readable exported run file")
    run = load_run_file(path)
    if run.get("suite") != suite.name:
        raise EvalError(f"baseline file {path} is of suite {run.get('suite')!r}, not {suite.name}")
    return run


def baseline_file(suite_name: str) -> Path:
    return DEFAULT_SUITES_FILE.parent / "baselines" / f"{suite_name}.json"


def load_run_file(path: Path) -> dict:
    try:
        run = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EvalError(f"baseline file {path} is not a readable exported run: {exc}") from None
    if not isinstance(run, dict) or not isinstance(run.get("results"), dict):
        raise EvalError(f"baseline file {path} has no per-case results")
    return run


def get_run(run_id: int) -> dict | None:
    """A stored run with its per-case results keyed by case id (the form baselines take)."""
    with db.session() as session:
        run = session.get(EvalRun, run_id)
        if run is None:
            return None
        rows = session.exec(select(EvalResult).where(EvalResult.run_id == run_id)).all()
    out = run.model_dump()
    summary = json.loads(out.pop("summary") or "{}")
    out["segments"] = summary.get("segments", {})
    out["scorers"] = summary.get("scorers", {})
    out["message"] = summary.get("message", "")
    out["results"] = {r.case_id: r.model_dump() | {"expected": json.loads(r.expected), "scores": json.loads(r.scores)}
                      for r in rows}
    return out


def export_run(run_id: int) -> dict:
    """A run as a self-contained JSON object: check one in as `data/evals/baselines/SUITE.json` to gate CI."""
    run = get_run(run_id)
    if run is None:
        raise EvalError(f"no eval run with id {run_id}")
    keep = ("case_id", "segment", "source", "passed", "score", "latency_ms", "cost_usd")
    run["results"] = {k: {f: v[f] for f in keep} for k, v in run["results"].items() if v["source"] == "dataset"}
    return run


def list_runs(suite: str | None = None, limit: int = 100) -> list[dict]:
    stmt = select(EvalRun).order_by(col(EvalRun.started_at).desc(), col(EvalRun.id).desc()).limit(limit)
    if suite:
        stmt = stmt.where(EvalRun.suite == suite)
    with db.session() as session:
        runs = session.exec(stmt).all()
        done = {}
        running = [r.id for r in runs if r.status == RunStatus.RUNNING]
        if running:
            for rid in running:
                done[rid] = len(session.exec(select(EvalResult.case_id).where(EvalResult.run_id == rid)).all())
    out = []
    for r in runs:
        d = r.model_dump()
        summary = json.loads(d.pop("summary") or "{}")
        d["message"] = summary.get("message", "")
        d["done"] = done.get(r.id, r.cases)
        out.append(d)
    return out


def compare_runs(run_a: int, run_b: int) -> list[dict]:
    """Case by case, side by side: both verdicts and outputs, and whether B regressed or improved on A."""
    a, b = get_run(run_a), get_run(run_b)
    if a is None or b is None:
        raise EvalError(f"no eval run with id {run_a if a is None else run_b}")
    rows = []
    for case_id in sorted(set(a["results"]) | set(b["results"])):
        ra, rb = a["results"].get(case_id), b["results"].get(case_id)
        change = "same"
        if ra and rb and ra["passed"] and not rb["passed"]:
            change = "regressed"
        elif ra and rb and not ra["passed"] and rb["passed"]:
            change = "improved"
        elif not ra or not rb:
            change = "only in A" if ra else "only in B"
        any_row = rb or ra
        rows.append({"case_id": case_id, "segment": any_row["segment"], "source": any_row["source"],
                     "input": any_row["input_text"][:500], "expected": any_row["expected"], "change": change,
                     "a_passed": ra and ra["passed"], "b_passed": rb and rb["passed"],
                     "a_output": ra and ra["output"][:500], "b_output": rb and rb["output"][:500]})
    order = {"regressed": 0, "improved": 1, "only in A": 2, "only in B": 2, "same": 3}
    return sorted(rows, key=lambda r: (order[r["change"]], r["case_id"]))


def compare_models(models: list[str], suites: list[str] | None = None, *, progress: Progress | None = None,
                   started_by: str | None = None, limit: int | None = None) -> list[dict]:
    """For a model migration: run each model-calling suite once per model; quality, cost and latency per row."""
    if len(models) < 2:
        raise EvalError("compare needs at least two --model values")
    all_suites = load_suites()
    names = suites or [s.name for s in all_suites.values() if s.uses_model and s.fast]
    rows = []
    for name in names:
        suite = get_suite(name)
        if not suite.uses_model:
            raise EvalError(f"suite {name} does not call a model; it cannot compare models")
        for model in models:
            report = run_suite(name, model=model, baseline=None, progress=progress, started_by=started_by, limit=limit)
            r = report.run
            rows.append({"suite": name, "model": model, "run_id": r["id"], "score": r["score"], "cases": r["cases"],
                         "cost_usd": r["cost_usd"], "latency_p50_ms": r["latency_p50_ms"],
                         "latency_p95_ms": r["latency_p95_ms"], "status": r["status"]})
    return rows


def describe_suites() -> list[dict[str, Any]]:
    out = []
    for s in load_suites().values():
        n: int | str
        try:
            n = len(load_cases(s, include_collected=False))
        except EvalError as exc:
            n = f"unavailable: {exc}"
        out.append({"suite": s.name, "feature": s.feature, "target": s.target, "cases": n, "fast": s.fast,
                    "uses_model": s.uses_model, "scorers": ", ".join(s.scorers), "tolerance": s.tolerance,
                    "min_score": s.min_score, "description": s.description})
    return out


# --- Runs started from the UI --------------------------------------------------------------------------------------

def start_background_run(name: str, *, started_by: str | None = None, **kwargs) -> bool:
    """Queue a run of the suite as a durable job (core.jobs; any replica runs it and shows it); its progress is the
    stored run's result count. Returns False when that suite is already queued or running on any replica."""
    from core.evals._jobs import start

    get_suite(name)
    return start(name, started_by=started_by, **kwargs)


def background_status() -> dict[str, dict]:
    """Per suite, its newest page-started run job: running, error, started (from SQL, so every replica agrees)."""
    from core.evals._jobs import status

    return status()
