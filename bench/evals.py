"""Offline evals: how long the fast suites take, and what the eval machinery adds over calling the target directly.

For each fast suite that calls no model (the support suites), the whole `run_suite` — loading cases, running the
target, scoring, storing every result in SQL, comparing with the baseline — is timed against a baseline measured
in the same process: the same target function called on the same cases in a plain loop. Target: the
support-intent suite in at most 60 s. Model-calling suites are timed once each (their time is the model's).

    python bench/evals.py [--json] [--skip-model]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import _common
from _common import Report

TARGET_SUPPORT_INTENTS_S = 60.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def body(report: Report, skip_model: bool) -> None:
    home = tempfile.mkdtemp(prefix="keel-bench-evals-")
    _common.fresh_core(HOME=home)
    from core.evals import RunOptions, get_target, load_cases, load_suites, run_suite

    suites = load_suites()
    for name in ("support-intents", "support-routes"):
        suite = suites[name]
        cases = load_cases(suite, include_collected=False)
        target = get_target(suite.target)
        options = RunOptions(suite=name, settings=suite.options)
        target.prepare(options)
        target.run(cases[0], options)  # load the encoder and the classifier once, outside both timings
        started = time.perf_counter()
        for case in cases:
            target.run(case, options)
        direct_s = time.perf_counter() - started
        log(f"{name}: {len(cases)} cases direct in {direct_s:.2f} s; now through run_suite")
        started = time.perf_counter()
        result = run_suite(name, baseline=None)
        suite_s = time.perf_counter() - started
        key = name.replace("-", "_")
        report.metric(f"{key}_cases", len(cases), "", f"{name}: cases")
        report.metric(f"{key}_suite_s", suite_s, "s", f"{name}: whole suite (run, score, store)")
        report.metric(f"{key}_direct_s", direct_s, "s", f"{name}: baseline, target called in a loop")
        report.metric(f"{key}_ratio", suite_s / max(direct_s, 1e-9), "x", f"{name}: suite / baseline")
        report.metric(f"{key}_score", result.run["score"], "", f"{name}: score")
        if name == "support-intents":
            report.check(f"{key}_suite_s", suite_s, "<=", TARGET_SUPPORT_INTENTS_S, "s",
                         "support-intent suite wall time")
            report.check(f"{key}_score", result.run["score"], ">=", 0.9, "", "support-intent accuracy (held out)")
    if skip_model:
        return
    for name in ("workspace-action-items", "llm-replays"):
        started = time.perf_counter()
        result = run_suite(name, baseline=None)
        key = name.replace("-", "_")
        report.metric(f"{key}_suite_s", time.perf_counter() - started, "s", f"{name}: whole suite (embedded model)")
        report.metric(f"{key}_score", result.run["score"], "", f"{name}: score")
    report.note("model-calling suites run on the embedded model; their time is the model's decode time")


def main() -> int:
    parser = argparse.ArgumentParser(description="Eval suite wall time against calling the targets directly.")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--skip-model", action="store_true", help="only the suites that call no model")
    args = parser.parse_args()
    report = Report("evals", "offline eval suites: wall time and overhead over the bare target")
    return _common.run(report, lambda r: body(r, args.skip_model), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
