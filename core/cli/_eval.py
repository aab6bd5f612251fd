"""Offline evals from the command line: run suites against a baseline, compare models, list and export runs."""

from __future__ import annotations

import json
import os
import sys

from core.cli._common import _print


def _user() -> str:
    return f"cli:{os.environ.get('USER') or 'local'}"


class _ProgressLine:
    """`[suite] 12/40 ✓11 ✗1` on stderr, redrawn in place on a terminal, every tenth case otherwise."""

    def __init__(self, suite: str):
        self.suite = suite
        self.tty = sys.stderr.isatty()

    def __call__(self, done: int, total: int, info: dict) -> None:
        failed = done - info["so_far"]
        line = f"[{self.suite}] {done}/{total} ✓{info['so_far']} ✗{failed}"
        if self.tty:
            print(f"\r{line}", end="" if done < total else "\n", file=sys.stderr, flush=True)
        elif done == total or done % 10 == 0:
            print(line, file=sys.stderr, flush=True)


def cmd_eval_list(args) -> int:
    from core.evals import describe_suites

    suites = describe_suites()
    lines = [f"{s['suite']:<24} {str(s['cases']):>5} cases  {'fast' if s['fast'] else 'slow'}  "
             f"{'model' if s['uses_model'] else '     '}  {s['description']}" for s in suites]
    _print(args, suites, "\n".join(lines))
    return 0


def cmd_eval_run(args) -> int:
    from core import services
    from core.evals import export_run, load_suites, run_suite

    services.prepare()
    names = list(args.suites)
    if args.fast:
        names += [s.name for s in load_suites().values() if s.fast and s.name not in names]
    if not names:
        raise ValueError("name a suite (see `keel eval list`) or pass --fast")
    if args.export and len(names) != 1:
        raise ValueError("--export writes one run: name exactly one suite")
    reports, failed = [], False
    for name in names:
        report = run_suite(name, model=args.model, prompt_version=args.prompt_version, baseline=args.baseline,
                           include_collected=not args.no_collected, limit=args.limit,
                           progress=None if args.json else _ProgressLine(name), started_by=_user())
        failed |= report.failed
        reports.append(report)
        if not args.json:
            _print_report(report)
        if args.export:
            with open(args.export, "w", encoding="utf-8") as f:
                json.dump(export_run(report.run["id"]), f, indent=1, sort_keys=True)
            print(f"wrote {args.export}", file=sys.stderr)
    if args.json:
        print(json.dumps([{
            **{k: r.run[k] for k in ("id", "suite", "model", "prompt_version", "status", "cases", "score",
                                     "baseline_run_id", "baseline_score", "regressions", "cost_usd",
                                     "latency_p50_ms", "latency_p95_ms")},
            "message": r.message, "segments": r.segments,
            "regressed_cases": [x["case_id"] for x in r.regressions],
            "improved_cases": [x["case_id"] for x in r.improvements],
        } for r in reports], default=str))
    return 1 if failed else 0


def _print_report(report) -> None:
    run = report.run
    mark = {"passed": "PASS", "failed": "FAIL", "error": "ERROR"}.get(run["status"], run["status"])
    print(f"{mark} {run['suite']} run {run['id']} ({run['model'] or 'default'}): {report.message}")
    print(f"    cost ${run['cost_usd']:.6f} · latency p50 {run['latency_p50_ms'] or 0:.1f} ms "
          f"p95 {run['latency_p95_ms'] or 0:.1f} ms")
    baseline_segments = {}
    if run.get("baseline_run_id"):
        from core.evals import get_run

        baseline_segments = (get_run(run["baseline_run_id"]) or {}).get("segments", {})
    for name, seg in report.segments.items():
        before = baseline_segments.get(name)
        delta = f"  (baseline {before['score']:.0%})" if before else ""
        label = f"{name} [{seg['source']}]" if seg["source"] != "dataset" else name
        print(f"    {label:<32} {seg['passed']:>4}/{seg['n']:<4} {seg['score']:.0%}{delta}")
    for r in report.regressions:
        why = "; ".join(s["why"] for s in json.loads(r["scores"]).values() if s["why"]) or r.get("error") or ""
        print(f"    REGRESSED {r['case_id']} [{r['segment']}]: {why[:160]}")


def cmd_eval_compare(args) -> int:
    from core import services
    from core.evals import compare_models

    services.prepare()
    if len(args.model) == 2:
        return _migration_report(args)
    progress = None if args.json else (lambda done, total, info: _ProgressLine("compare")(done, total, info))
    rows = compare_models(args.model, args.suite or None, progress=progress, started_by=_user(), limit=args.limit)
    header = f"{'suite':<24} {'model':<36} {'score':>7} {'cases':>5} {'cost $':>10} {'p50 ms':>9} {'p95 ms':>9}"
    lines = [header, "-" * len(header)]
    for r in rows:
        score = "n/a" if r["score"] is None else f"{r['score']:.1%}"
        lines.append(f"{r['suite']:<24} {r['model'][:36]:<36} {score:>7} {r['cases']:>5} {r['cost_usd']:>10.6f} "
                     f"{r['latency_p50_ms'] or 0:>9.1f} {r['latency_p95_ms'] or 0:>9.1f}")
    _print(args, rows, "\n".join(lines))
    return 0


def cmd_eval_runs(args) -> int:
    from core import services
    from core.evals import list_runs

    services.prepare()
    runs = list_runs(args.suite, limit=args.n)
    lines = [f"{r['id']:>5} {r['suite']:<24} {r['status']:<8} "
             f"{'' if r['score'] is None else format(r['score'], '.1%'):>7} {r['model'] or '':<30} {r['message']}"
             for r in runs]
    _print(args, runs, "\n".join(lines) or "no eval runs yet")
    return 0


def cmd_eval_export(args) -> int:
    from core import services
    from core.evals import export_run

    services.prepare()
    run = export_run(args.run)
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(run, f, indent=1, sort_keys=True)
    _print(args, {"written": args.output, "run": args.run, "cases": len(run["results"])}, f"wrote {args.output}")
    return 0


def _migration_report(args) -> int:
    """Two models: the comparison is stored as a migration report (quality, cost, latency per suite and segment)."""
    from core.observe import get_migration_report, report_rows, start_migration_report

    report_id = start_migration_report(args.model[0], args.model[1], args.suite or None, limit=args.limit,
                                       created_by=_user())
    report = get_migration_report(report_id)
    header = f"{'suite':<24} {'model':<30} {'score':>7} {'n':>4} {'cost $':>10} {'p50 ms':>9} {'p95 ms':>9}  segment"
    lines = [header, "-" * len(header)]
    for r in report_rows(report):
        score = "n/a" if r["score"] is None else f"{r['score']:.1%}"
        lines.append(f"{r['suite'][:24]:<24} {r['model'][:30]:<30} {score:>7} {r['n']:>4} {r['cost_usd'] or 0:>10.6f} "
                     f"{r['latency_p50_ms'] or 0:>9.1f} {r['latency_p95_ms'] or 0:>9.1f}  {r['segment']}")
    lines.append(f"stored as migration report {report_id}: {report['model_from']} → {report['model_to']} "
                 f"({report['status']})")
    for suite, verdict in report["report"].get("verdict", {}).items():
        lines.append(f"{suite}: {verdict}")
    if report["error"]:
        lines.append(f"stopped: {report['error']}")
    _print(args, report, "\n".join(lines))
    return 0 if report["status"] == "done" else 1


def cmd_eval_coverage(args) -> int:
    from core import services
    from core.evals import branch_coverage

    services.prepare()
    report = branch_coverage(days=args.days)
    lines = [f"{'agent':<8} {'branch':<28} {'eval cases':>10} {'production':>10} {'share':>7}  last failure"]
    for r in report.rows:
        fail = r.last_failure and f"{r.last_failure['suite']}:{r.last_failure['case_id']} (run {r.last_failure['run_id']})"
        mark = "  UNCOVERED" if r.uncovered else ("  (not in code)" if not r.in_code else "")
        lines.append(f"{r.agent:<8} {r.branch:<28} {r.eval_cases:>10} {r.production:>10} {r.share:>7.1%}  "
                     f"{fail or '-'}{mark}")
    if report.uncovered:
        lines.append(f"{len(report.uncovered)} branch(es) production takes have no eval case: "
                     + ", ".join(f"{r.agent}:{r.branch}" for r in report.uncovered))
    _print(args, report.as_dict(), "\n".join(lines))
    return 1 if report.uncovered else 0


def cmd_eval_decay(args) -> int:
    from core import services
    from core.observe import DECAY_DEFAULT_DISTANCE, decay_reports

    services.prepare()
    distance = DECAY_DEFAULT_DISTANCE if args.distance is None else args.distance
    reports = decay_reports(args.feature, args.days, distance)
    lines = []
    for r in reports:
        p = r["production"]
        share = "-" if r["uncovered_share"] is None else f"{r['uncovered_share']:.1%}"
        cap = f" (newest {p['sampled']} of {p['in_window']})" if p["capped"] else ""
        lines.append(f"{r['feature']}: {share} of {p['sampled']} production inputs{cap} have no eval input within "
                     f"{r['distance']:g} (last {r['days']:g} days, {r['eval_inputs']} eval inputs; report {r['id']}, "
                     f"{r['timings']['total_ms'] / 1000:.1f} s)")
        for c in r["clusters"]:
            lines.append(f"    cluster {c['cluster']}: {c['size']} inputs, e.g. "
                         + " | ".join(repr(e[:60]) for e in c["examples"]))
        for d in r["discrimination"]:
            spread = "" if d["spread"] is None else f" spread {d['spread']:.1%} (tolerance {d['tolerance']:.0%})"
            lines.append(f"    {d['suite']}: {d['verdict']}{spread}")
    _print(args, reports, "\n".join(lines))
    return 0


def cmd_eval_investigate(args) -> int:
    from core import services
    from core.observe import get_investigation, plan_investigation, start_investigation

    services.prepare()
    if args.show:
        inv = get_investigation(args.show)
        _print(args, inv, json.dumps(inv, indent=2, default=str))
        return 0
    if not args.request_id:
        raise ValueError("name the logged call's request id (or --show ID)")
    plan = plan_investigation(args.request_id, args.hypothesis or "", args.factor, args.value or [], args.n)
    if not args.yes:
        _print(args, {"plan": plan.as_dict(), "ran": False},
               f"{plan.total} rerun(s) of {plan.request_id} varying {plan.factor}: at most "
               f"${plan.estimate_usd:.6f}. Add --yes to run.")
        return 0
    inv = get_investigation(start_investigation(plan, created_by=_user(), background=False))
    lines = [f"investigation {inv['id']} ({inv['status']}): {inv['hypothesis']}",
             f"cost ${inv['cost_usd']:.6f} (estimate ≤ ${inv['estimate_usd']:.6f}), tokens {inv['tokens_in']}/"
             f"{inv['tokens_out']}"]
    for value, o in inv["outcomes"].items():
        top = o["top"][0]["text"][:60] if o["top"] else ""
        lines.append(f"  {value}: {o['ok']}/{o['runs']} answered, {o['distinct']} distinct; most common: {top!r}")
    _print(args, inv, "\n".join(lines))
    return 0 if inv["status"] == "done" else 1


def cmd_eval_lifecycle(args) -> int:
    from core import services
    from core.observe import list_lifecycle, migrations_due, set_lifecycle

    services.prepare()
    if args.model:
        set_lifecycle(args.model, args.deprecate_on or "", args.owner or "", args.replacement)
    rows = migrations_due(args.within) if args.due else list_lifecycle()
    lines = [f"{r['model']:<30} {r['deprecation_date']}  {r['days_left']:>5} days  owner {r['owner']}"
             f"{'  → ' + r['replacement'] if r['replacement'] else ''}" for r in rows]
    _print(args, rows, "\n".join(lines) or "no model has a deprecation date")
    return 0


def cmd_eval_relabel(args) -> int:
    from core import services
    from core.evals import annotation_summary, audit_report, start_audit

    services.prepare()
    if args.start:
        audit_id = start_audit(args.start, args.k, created_by=_user(), seed=args.seed)
        _print(args, {"audit_id": audit_id}, f"audit {audit_id}: label its cases on the Evals page")
        return 0
    if args.report:
        report = audit_report(args.report)
        _print(args, report, json.dumps(report, indent=2, default=str))
        return 0
    rows = annotation_summary()
    lines = [f"{r['suite']:<24} " + (r.get("error") or
             f"{r['cases']:>5} cases  {r['outdated']:>5} before rubric v{r['current_rubric']}  "
             f"kappa {'-' if r['kappa'] is None else format(r['kappa'], '.2f')}") for r in rows]
    _print(args, rows, "\n".join(lines))
    return 0


def add_eval_commands(sub, add) -> None:
    ev = sub.add_parser("eval", help="offline eval suites").add_subparsers(dest="eval_command", required=True)
    add("list", cmd_eval_list, "the eval suites and their case counts", ev)
    p = add("run", cmd_eval_run, "run suites, compare with a baseline, exit 1 on a regression", ev)
    p.add_argument("suites", nargs="*", metavar="SUITE")
    p.add_argument("--fast", action="store_true", help="also run every suite marked fast")
    p.add_argument("--model", help="a tier or provider/model to run model-calling suites against")
    p.add_argument("--prompt-version", help="a prompt version hash (from git history) or a candidate prompt file")
    p.add_argument("--baseline", default="auto",
                   help="a run id, an exported run file, 'auto' (newest run, else data/evals/baselines/SUITE.json) "
                        "or 'none'")
    p.add_argument("--limit", type=int, help="run only the first N cases")
    p.add_argument("--no-collected", action="store_true",
                   help="leave out cases collected from the review queue and support escalations")
    p.add_argument("--export", metavar="FILE", help="write the run as a baseline file")
    p = add("compare", cmd_eval_compare, "quality, cost and latency of two or more models, as a table", ev)
    p.add_argument("--model", action="append", required=True, help="repeat: --model A --model B")
    p.add_argument("--suite", action="append", help="suites to run (default: fast suites that call a model)")
    p.add_argument("--limit", type=int, help="run only the first N cases of each suite")
    p = add("coverage", cmd_eval_coverage, "agent branches: eval cases, production share, last failure; exit 1 when "
            "a branch production takes has no eval case", ev)
    p.add_argument("--days", type=float, default=30.0, help="production window (default 30 days)")
    p = add("decay", cmd_eval_decay, "snapshot eval decay: production inputs with no eval input nearby, their "
            "clusters, and whether each suite still separates two models (stored as decay reports)", ev)
    p.add_argument("--feature", help="one feature (default: every feature with an eval suite)")
    p.add_argument("--days", type=float, default=7.0, help="production window (default 7 days)")
    p.add_argument("--distance", type=float, default=None,
                   help="cosine distance under which an eval input covers a production input (default 0.45)")
    p = add("investigate", cmd_eval_investigate, "rerun a logged call N times varying one factor, with a hypothesis",
            ev)
    p.add_argument("request_id", nargs="?")
    p.add_argument("--hypothesis")
    p.add_argument("--factor", choices=["model", "prompt_version", "temperature", "context"], default="temperature")
    p.add_argument("--value", action="append", help="repeat: a value of the factor to try")
    p.add_argument("-n", type=int, default=5, help="reruns per value")
    p.add_argument("--yes", action="store_true", help="run (without it: show the plan and cost estimate)")
    p.add_argument("--show", type=int, metavar="ID", help="show a stored investigation")
    p = add("lifecycle", cmd_eval_lifecycle, "model deprecation dates and owners; migrations due", ev)
    p.add_argument("--model", help="set this priced model's entry (with --deprecate-on and --owner)")
    p.add_argument("--deprecate-on", metavar="YYYY-MM-DD")
    p.add_argument("--owner")
    p.add_argument("--replacement")
    p.add_argument("--due", action="store_true", help="only migrations due within --within days")
    p.add_argument("--within", type=int, default=90)
    p = add("relabel", cmd_eval_relabel, "annotation drift: rubric versions, re-label audits, Cohen's kappa", ev)
    p.add_argument("--start", metavar="SUITE", help="start an audit of k sampled cases")
    p.add_argument("-k", type=int, default=20)
    p.add_argument("--seed", type=int)
    p.add_argument("--report", type=int, metavar="AUDIT", help="kappa and disagreements of an audit")
    p = add("runs", cmd_eval_runs, "stored runs, newest first", ev)
    p.add_argument("--suite")
    p.add_argument("-n", type=int, default=20)
    p = add("export", cmd_eval_export, "write a stored run as a baseline file", ev)
    p.add_argument("run", type=int)
    p.add_argument("-o", "--output", required=True)
