"""Offline evals: suites, the runner, scorers, the case store, runs as durable jobs, branch coverage and re-label
audits.

Features plug in; this package imports none of them. A feature registers its targets (`register_target`) and, for an
agent, its decision branches (`register_branches`) from its own `core/<feature>/_eval.py`, which is imported by name
the first time a suite names one of its targets (`support.route` loads `core.support._eval`).
"""

from core.evals._cases import (
    CASE_SOURCES, MAX_CASE_INPUT_CHARS, CaseSource, add_eval_case, delete_eval_case, list_eval_cases,
)
from core.evals._coverage import Agent, BranchRow, CoverageReport, agent_branches, branch_coverage, register_branches
from core.evals._jobs import close_run
from core.evals._relabel import (
    AuditStatus, RelabelError, annotation_summary, audit_items, audit_report, case_annotations, cohens_kappa,
    list_audits, record_label, start_audit, suite_labels,
)
from core.evals._runner import (
    EvalError, RunReport, RunStatus, Suite, background_status, compare_models, compare_runs, describe_suites,
    export_run, get_run, get_suite, list_runs, load_cases, load_suites, run_suite, start_background_run, suites_file,
)
from core.evals._scorers import SCORERS, ScoreResult
from core.evals._targets import (
    TARGETS, EvalTargetError, RunOptions, Target, TargetOutput, capable_judge_available, complete, get_target,
    llm_overrides, parse_logged_input, register_target, resolve_prompt, tier_model_label,
)

__all__ = [
    "CASE_SOURCES", "MAX_CASE_INPUT_CHARS", "CaseSource", "SCORERS", "TARGETS", "Agent", "AuditStatus", "BranchRow",
    "CoverageReport", "EvalError", "EvalTargetError", "RelabelError", "RunOptions", "RunReport", "RunStatus",
    "ScoreResult", "Suite", "Target", "TargetOutput", "add_eval_case", "agent_branches", "annotation_summary",
    "audit_items", "audit_report", "background_status", "branch_coverage", "capable_judge_available",
    "case_annotations", "close_run", "cohens_kappa", "compare_models", "compare_runs", "complete",
    "delete_eval_case", "describe_suites", "export_run", "get_run", "get_suite", "get_target", "list_audits",
    "list_eval_cases", "list_runs", "llm_overrides", "load_cases", "load_suites", "parse_logged_input",
    "record_label", "register_branches", "register_target", "resolve_prompt", "run_suite", "start_audit",
    "start_background_run", "suite_labels", "suites_file", "tier_model_label",
]
