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
    from core.ops import describe_suites

    suites = describe_suites()
    lines = [f"{s['suite']:<24} {str(s['cases']):>5} cases  {'fast' if s['fast'] else 'slow'}  "
             f"{'model' if s['uses_model'] else '     '}  {s['description']}" for s in suites]
    _print(args, suites, "\n".join(lines))
    return 0


def cmd_eval_run(args) -> int:
    from core import services
    from core.ops import export_run, load_suites, run_suite

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
        from core.ops import get_run

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
    from core.ops import compare_models

    services.prepare()
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
    from core.ops import list_runs

    services.prepare()
    runs = list_runs(args.suite, limit=args.n)
    lines = [f"{r['id']:>5} {r['suite']:<24} {r['status']:<8} "
             f"{'' if r['score'] is None else format(r['score'], '.1%'):>7} {r['model'] or '':<30} {r['message']}"
             for r in runs]
    _print(args, runs, "\n".join(lines) or "no eval runs yet")
    return 0


def cmd_eval_export(args) -> int:
    from core import services
    from core.ops import export_run

    services.prepare()
    run = export_run(args.run)
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(run, f, indent=1, sort_keys=True)
    _print(args, {"written": args.output, "run": args.run, "cases": len(run["results"])}, f"wrote {args.output}")
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
    p = add("runs", cmd_eval_runs, "stored runs, newest first", ev)
    p.add_argument("--suite")
    p.add_argument("-n", type=int, default=20)
    p = add("export", cmd_eval_export, "write a stored run as a baseline file", ev)
    p.add_argument("run", type=int)
    p.add_argument("-o", "--output", required=True)
