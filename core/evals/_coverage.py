"""Agent branch coverage: which decision branches the support router and the PR-review agent take in production,
and which of them any eval case exercises. The branch list is the agents' own StrEnums, so a branch added in code
shows up here uncovered until an eval case takes it; `keel eval coverage` fails CI on a production branch with no
eval case. Each agent's feature registers its branch enum from its own `_eval.py` (`register_branches`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import cast

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import col, select

from core import db
from core.tables import EvalResult, EvalRun, ReviewRun, SupportMessage


class Agent(StrEnum):
    SUPPORT = "support"
    REVIEW = "review"


_BRANCHES: dict[Agent, list[str]] = {}


def register_branches(agent: Agent, branches: Iterable[str]) -> None:
    """A feature's `_eval.py` names the branches its agent can take (its own StrEnum)."""
    _BRANCHES[Agent(agent)] = [str(b) for b in branches]


def agent_branches() -> dict[Agent, list[str]]:
    """The branches each agent can take, read from the code that decides them (each agent's package is loaded by
    name, so this module imports none of them)."""
    from core.evals._targets import _load_feature

    for agent in Agent:
        if agent not in _BRANCHES:
            _load_feature(str(agent))
    return {agent: list(_BRANCHES.get(agent, [])) for agent in Agent}


@dataclass
class BranchRow:
    agent: str
    branch: str
    eval_cases: int  # distinct cases that took this branch in each suite's latest run
    suites: list[str]
    production: int  # production decisions (support turns, reviews) in the window
    share: float  # of this agent's production decisions
    last_failure: dict | None  # the newest failed eval case on this branch: suite, case, run, when
    in_code: bool = True  # False: production recorded a branch the code no longer has

    @property
    def uncovered(self) -> bool:
        return self.in_code and self.production > 0 and self.eval_cases == 0


@dataclass
class CoverageReport:
    days: float
    rows: list[BranchRow]

    @property
    def uncovered(self) -> list[BranchRow]:
        return [r for r in self.rows if r.uncovered]

    def as_dict(self) -> dict:
        return {"days": self.days, "ok": not self.uncovered,
                "uncovered": [f"{r.agent}:{r.branch}" for r in self.uncovered],
                "branches": [asdict(r) | {"uncovered": r.uncovered} for r in self.rows]}


def production_branches(days: float = 30.0) -> dict[Agent, dict[str, int]]:
    """Branch counts of production decisions since `days` ago: every support bot turn (its decision is stored in
    the message's meta) and every review not run by an eval."""
    since = time.time() - days * 86400
    counts: dict[Agent, dict[str, int]] = {Agent.SUPPORT: {}, Agent.REVIEW: {}}
    with db.session() as s:
        metas = s.exec(select(SupportMessage.meta).where(
            SupportMessage.created_at >= since, col(SupportMessage.role).in_(("bot", "system")),
            col(SupportMessage.meta).like('%"branch"%'))).all()
        reviews = s.exec(select(ReviewRun.result_json).where(
            ReviewRun.created_at >= since, (col(ReviewRun.user).is_(None)) | (ReviewRun.user != "eval"))).all()
    for meta in metas:
        branch = _json_path(meta, "decision", "branch")
        if branch:
            counts[Agent.SUPPORT][branch] = counts[Agent.SUPPORT].get(branch, 0) + 1
    for payload in reviews:
        branch = _json_path(payload, "triage", "branch")
        if branch:
            counts[Agent.REVIEW][branch] = counts[Agent.REVIEW].get(branch, 0) + 1
    return counts


def _json_path(text: str | None, *keys: str):
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError:
        return None
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value if isinstance(value, str) else None


def eval_branches() -> tuple[dict[str, dict[str, set[str]]], dict[str, dict]]:
    """Per branch: suite → case ids that took it in the suite's latest finished run; and the newest failure."""
    with db.session() as s:
        latest = s.exec(select(EvalRun.suite, func.max(EvalRun.id)).where(EvalRun.status != "running")
                        .group_by(EvalRun.suite)).all()
        run_ids = [rid for _, rid in latest]
        results = s.exec(select(EvalResult.run_id, EvalResult.case_id, EvalResult.branch)
                         .where(col(EvalResult.run_id).in_(run_ids), col(EvalResult.branch).is_not(None))
                         ).all() if run_ids else []
        # six columns: more than sqlmodel's select() has typed overloads for, so SQLAlchemy's select, run on the
        # session's connection
        failures = s.connection().execute(
            sa_select(col(EvalResult.branch), col(EvalResult.case_id), col(EvalResult.error), col(EvalRun.id),
                      col(EvalRun.suite), col(EvalRun.started_at))
            .join(EvalRun, col(EvalRun.id) == EvalResult.run_id)
            .where(col(EvalResult.branch).is_not(None), col(EvalResult.passed).is_(False))
            .order_by(col(EvalRun.started_at).desc(), col(EvalRun.id).desc()).limit(2000)).all()
    suite_of = {rid: suite for suite, rid in latest}
    cases: dict[str, dict[str, set[str]]] = {}
    for run_id, case_id, branch in results:
        branch = cast(str, branch)  # the query keeps only results with a branch
        cases.setdefault(branch, {}).setdefault(suite_of[run_id], set()).add(case_id)
    last_failure: dict[str, dict] = {}
    for branch, case_id, error, failed_run, suite, started in failures:
        branch = cast(str, branch)  # the query keeps only results with a branch
        last_failure.setdefault(branch, {"suite": suite, "case_id": case_id, "run_id": failed_run, "at": started,
                                         "error": (error or "")[:200]})
    return cases, last_failure


def branch_coverage(days: float = 30.0) -> CoverageReport:
    """Every branch of every agent with its eval cases, production share and last eval failure."""
    if not 0 < days <= 3650:
        raise ValueError("days must be between 0 and 3650")
    code = agent_branches()
    production = production_branches(days)
    cases, last_failure = eval_branches()
    rows = []
    for agent, branches in code.items():
        seen = production[agent]
        total = sum(seen.values())
        for branch in branches + sorted(set(seen) - set(branches)):
            by_suite = cases.get(branch, {})
            rows.append(BranchRow(
                agent=str(agent), branch=branch, eval_cases=sum(len(v) for v in by_suite.values()),
                suites=sorted(by_suite), production=seen.get(branch, 0),
                share=round(seen.get(branch, 0) / total, 4) if total else 0.0,
                last_failure=last_failure.get(branch), in_code=branch in branches))
    return CoverageReport(days=days, rows=rows)
