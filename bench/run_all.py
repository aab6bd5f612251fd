"""Run every benchmark, one after another, and print a summary (or one JSON object with `--json`).

Each benchmark runs in its own process (`python bench/NAME.py --json`), so one cannot disturb another's
memory or threads; their progress messages go to stderr. The exit status is 0 only if all passed.

    python bench/run_all.py [--json] [--only gateway_overhead,dashboard] [--skip startup_memory]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
BENCHMARKS = ("gateway_overhead", "embedded_model", "dashboard", "startup_memory", "workspace_credits", "completion", "support_classifier", "evals",
              "search_retrieval", "search_ingest", "search_recall", "review")
# metrics worth a glance in the summary, besides the checks
HEADLINES = {
    "gateway_overhead": ("direct_median_ms", "gateway_median_ms", "added_median_ms", "ratio_median"),
    "embedded_model": ("direct_ttft_ms", "gateway_ttft_ms", "direct_decode_tps", "gateway_decode_tps",
                       "tps_ratio"),
    "dashboard": ("dashboard_median_ms", "naive_median_ms", "ratio", "speedup"),
    "startup_memory": ("healthy_s", "import_streamlit_s", "ratio", "peak_rss_mib"),
    "evals": ("support_intents_suite_s", "support_intents_direct_s", "support_intents_ratio",
              "support_routes_suite_s", "workspace_action_items_suite_s"),
    "workspace_credits": ("reservations_per_s", "baseline_updates_per_s", "ratio", "fix_grammar_ttft_ms",
                          "fix_grammar_total_ms"),
    "completion": ("perceived_p50_ms", "perceived_p95_ms", "cache_hit_p50_ms", "no_suggestion_share",
                   "ratio_p50_naive_over_engine", "ratio_model_calls_naive_over_engine"),
    "support_classifier": ("classify_p50_ms", "classify_p95_ms", "encoder_p50_ms", "ratio_p50", "test_accuracy"),
    "search_retrieval": ("p95_ms_100000", "unfiltered_p95_ms_100000", "p95_ms_1000000", "unfiltered_p95_ms_1000000",
                         "vector_recall_at_20_1000000"),
    "search_ingest": ("ingest_chunks_per_s", "bare_embed_chunks_per_s", "ratio_ingest_over_bare", "resync_s",
                      "ratio_resync_over_bare_hash"),
    "search_recall": ("recall_at_5", "recall_at_5_all_access", "baseline_vector_recall_at_5", "mrr"),
    "review": ("tools_parallel_ms", "tools_sequential_ms", "tools_ratio", "cache_hit_ms", "wall_s_median"),
}


def run_one(name: str, timeout: float, extra: list[str]) -> dict:
    started = time.perf_counter()
    command = [sys.executable, str(BENCH_DIR / f"{name}.py"), "--json", *extra]
    try:
        done = subprocess.run(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=None, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"benchmark": name, "ok": False, "error": f"timed out after {timeout:g} s", "checks": [],
                "metrics": {}, "wall_s": round(time.perf_counter() - started, 1)}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        result = {"benchmark": name, "ok": False, "checks": [], "metrics": {},
                  "error": f"exit code {done.returncode} without a JSON report: {done.stdout.strip()[-500:]}"}
    result.setdefault("wall_s", round(time.perf_counter() - started, 1))
    return result


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"
    return str(value)


def summary(results: list[dict]) -> str:
    lines = ["", "== benchmark summary", ""]
    for r in results:
        lines.append(f"{'PASS' if r.get('ok') else 'FAIL'}  {r['benchmark']}  ({r.get('wall_s', '?')} s)")
        units = r.get("units", {})
        heads = [f"{k}={fmt(r['metrics'][k])}{units.get(k, '')}" for k in HEADLINES.get(r["benchmark"], ())
                 if r.get("metrics", {}).get(k) is not None]
        if heads:
            lines.append("      " + "  ".join(heads))
        for c in r.get("checks", []):
            target = f"{c['op']} {fmt(c['target'])} {c['unit']}".strip()
            lines.append(f"      [{'PASS' if c['passed'] else 'FAIL'}] {c['label']}: {fmt(c['value'])} "
                         f"(target {target})")
        if r.get("error"):
            lines.append(f"      error: {r['error']}")
        noise = (r.get("machine") or {}).get("other_cpu_cores")
        if noise is not None and noise >= 0.25:
            lines.append(f"      warning: other processes used {noise} cores meanwhile; timings are noisy")
    passed = sum(1 for r in results if r.get("ok"))
    lines += ["", f"{passed}/{len(results)} benchmarks passed"]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="Run all Keel benchmarks and summarise.")
    parser.add_argument("--json", action="store_true", help="print one JSON object with every report")
    parser.add_argument("--only", default="", help="comma-separated benchmark names to run")
    parser.add_argument("--skip", default="", help="comma-separated benchmark names to skip")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per benchmark (default 900)")
    parser.add_argument("--startup-cmd", default=None, help="passed to startup_memory.py as --cmd")
    args = parser.parse_args()
    only = [n for n in args.only.split(",") if n]
    skip = {n for n in args.skip.split(",") if n}
    unknown = [n for n in [*only, *skip] if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    names = [n for n in (only or BENCHMARKS) if n not in skip]

    results = []
    for name in names:
        print(f"[run_all] {name} ...", file=sys.stderr, flush=True)
        extra = ["--cmd", args.startup_cmd] if name == "startup_memory" and args.startup_cmd else []
        result = run_one(name, args.timeout, extra)
        print(f"[run_all] {name}: {'PASS' if result.get('ok') else 'FAIL'} ({result.get('wall_s')} s)",
              file=sys.stderr, flush=True)
        results.append(result)

    if args.json:
        print(json.dumps({"ok": all(r.get("ok") for r in results), "results": results}))
    else:
        print(summary(results))
    return 0 if results and all(r.get("ok") for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
