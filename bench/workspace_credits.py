"""Workspace credits and tasks: reservation throughput on SQLite under contention, and per-task speed.

Part 1 — credits. 8 threads reserve credits on one workspace (paid plan, so the limit is never reached but the
conditional `UPDATE … WHERE used < limit` and the reservation row are written every time). The baseline,
measured in the same process on the same database file and threads, is the same number of plain single-row
`UPDATE workspace_usage SET used = used + 1` transactions (no condition, no reservation row): what one
SQLite write transaction costs here. A 1-thread run shows the uncontended rate. Afterwards the usage
counter must equal the number of reservations (nothing lost under contention).

Part 2 — tasks on the embedded model. Each of the 12 tasks runs on the same selection through `run_task`
(membership check, credit reserved and settled, gateway, log), and the same prepared request straight through
the gateway as a baseline, alternating which goes first; both capped at --max-tokens. Reported per task:
time to first token and total time; checked: every task answered, and the workspace layer's added TTFT.

    python bench/workspace_credits.py [--json] [--threads 8] [--reservations 4000] [--max-tokens 64]
                                      [--skip-model]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time

import _common
from _common import Report, median, pct

TARGET_RESERVATIONS_PER_S = 1000.0
TARGET_ADDED_TTFT_MS = 25.0  # membership check + reservation + settle, per call
SELECTION = ("Our team met on Monday. Priya will draft the launch email by Thursday, and Tom needs to book "
             "the venue for the workshop. We agreed the budget is tight, so everyone should keep costs low.")
PAGE = "# Launch notes\n\n" + SELECTION + "\n\nThe launch is planned for 3 March; marketing owns the announcement."
PARAMS = {"translate": {"language": "French"}, "change_tone": {"tone": "friendly"},
          "ask_ai": {"instruction": "Turn this into a bullet list."},
          "ask_about_page": {"question": "When is the launch?"}}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _hammer(threads: int, per_thread: int, work) -> tuple[float, list[float]]:
    """Run `work()` per_thread times on each of `threads` threads started together; (rate/s, latencies ms)."""
    barrier = threading.Barrier(threads + 1)
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        barrier.wait()
        mine = latencies[index]
        try:
            for _ in range(per_thread):
                started = time.perf_counter()
                work()
                mine.append((time.perf_counter() - started) * 1000)
        except BaseException as exc:  # surface in the report, not as a thread traceback
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    flat = [x for chunk in latencies for x in chunk]
    return len(flat) / elapsed, flat


def credits_part(report: Report, threads: int, reservations: int) -> None:
    from sqlalchemy import text

    from core import db
    from core.workspace import credit_status, ensure_member, reserve_credit, set_plan

    with tempfile.TemporaryDirectory(prefix="keel-bench-") as home:
        _common.fresh_core(HOME=home)
        ensure_member("bench", "owner", "admin")
        set_plan("owner", "bench", "paid")
        ensure_member("baseline", "owner", "admin")
        reserve_credit("baseline", "owner", "warmup")  # creates the baseline's usage row for this month
        month = credit_status("bench").month
        plain = text("UPDATE workspace_usage SET used = used + 1 WHERE workspace_id = :ws AND month = :m")

        def baseline() -> None:
            with db.session() as s:
                s.connection().execute(plain, {"ws": "baseline", "m": month})

        def reserve() -> None:
            reserve_credit("bench", "owner", "bench")

        per_thread = max(1, reservations // threads)
        for work in (baseline, reserve):  # warm-up: connections in the pool, statement caches
            _hammer(threads, 20, work)
        log(f"credits: {threads} threads x {per_thread} reservations, alternating with the baseline")
        rates = {"reserve": [], "baseline": []}
        lats = {"reserve": [], "baseline": []}
        for round_ in range(3):  # alternate the arms so drift on a shared machine hits both
            for arm in (("baseline", "reserve") if round_ % 2 == 0 else ("reserve", "baseline")):
                rate, lat = _hammer(threads, per_thread // 3 or 1, reserve if arm == "reserve" else baseline)
                rates[arm].append(rate)
                lats[arm].extend(lat)
        single_rate, _ = _hammer(1, min(1000, reservations // 4 or 1), reserve)
        used = credit_status("bench").used
        with db.get_engine().connect() as conn:
            rows = conn.execute(text("SELECT COUNT(*) FROM workspace_credit WHERE workspace_id = 'bench'")).scalar()
        db.dispose_engine()

    reserve_rate, baseline_rate = median(rates["reserve"]), median(rates["baseline"])
    report.metric("threads", threads, label="threads")
    report.metric("reservations_per_s", reserve_rate, "/s", f"reservations/s, {threads} threads (median of 3)")
    report.metric("baseline_updates_per_s", baseline_rate, "/s",
                  f"baseline plain single-row UPDATE transactions/s, {threads} threads")
    report.metric("ratio", reserve_rate / baseline_rate if baseline_rate else None, "x",
                  "ratio reservations / baseline")
    report.metric("reservations_per_s_1_thread", single_rate, "/s", "reservations/s, 1 thread (uncontended)")
    report.metric("reserve_p50_ms", pct(lats["reserve"], 50), "ms", "reservation latency p50")
    report.metric("reserve_p99_ms", pct(lats["reserve"], 99), "ms", "reservation latency p99")
    report.metric("baseline_p99_ms", pct(lats["baseline"], 99), "ms", "baseline UPDATE latency p99")
    report.check("reservations_per_s", reserve_rate, ">=", TARGET_RESERVATIONS_PER_S, "/s",
                 f"reservations/s under {threads}-thread contention")
    report.check("nothing_lost", used == rows, "==", True, label="usage counter == reservation rows")


def tasks_part(report: Report, max_tokens: int) -> None:
    from core import db
    from core.llm import get_gateway, set_gateway
    from core.workspace import TASKS, ensure_member, prepare, run_task

    with tempfile.TemporaryDirectory(prefix="keel-bench-") as home:
        _common.fresh_core(HOME=home)
        set_gateway(None)
        ensure_member("bench", "owner", "admin", plan="paid")
        gateway = get_gateway()
        provider = gateway.providers["embedded"]
        provider.load()

        def timed(chunks) -> tuple[float, float, int]:
            started = time.perf_counter()
            ttft, n = None, 0
            for chunk in chunks:
                if chunk.text:
                    n += 1
                    if ttft is None:
                        ttft = time.perf_counter() - started
            total = time.perf_counter() - started
            return (ttft or total) * 1000, total * 1000, n

        def via_workspace(task_id: str):
            provider.kv_clear()
            return timed(run_task("owner", "bench", task_id, SELECTION, PAGE, PARAMS.get(task_id),
                                  max_tokens=_cap(task_id, max_tokens)))

        def via_gateway(task_id: str):
            provider.kv_clear()
            request = prepare(task_id, SELECTION, PAGE, PARAMS.get(task_id)).request(
                user="owner", customer="bench", max_tokens=_cap(task_id, max_tokens))
            return timed(gateway.stream(request))

        via_workspace("explain")  # warm-up: model load, first-call allocations
        via_gateway("explain")
        per_task, added = {}, []
        for i, task_id in enumerate(TASKS):
            log(f"task {task_id}")
            arms = (via_gateway, via_workspace) if i % 2 == 0 else (via_workspace, via_gateway)
            out = {arm.__name__: arm(task_id) for arm in arms}
            per_task[task_id] = out["via_workspace"]
            added.append(out["via_workspace"][0] - out["via_gateway"][0])
        gateway.flush(timeout=30)
        db.dispose_engine()

    for task_id, (ttft, total, n) in per_task.items():
        report.metric(f"{task_id}_ttft_ms", ttft, "ms", f"{task_id}: TTFT")
        report.metric(f"{task_id}_total_ms", total, "ms", f"{task_id}: total ({n} tokens)")
    report.metric("ttft_median_ms", median([v[0] for v in per_task.values()]), "ms", "TTFT median over tasks")
    report.metric("added_ttft_median_ms", median(added), "ms", "TTFT added by the workspace layer (median)")
    report.check("tasks_answered", sum(1 for v in per_task.values() if v[2] > 0), "==", len(TASKS),
                 label="tasks that streamed an answer")
    report.check("added_ttft_ms", median(added), "<=", TARGET_ADDED_TTFT_MS, "ms",
                 "workspace layer added TTFT (median)")
    report.note(f"task answers capped at {max_tokens} tokens (find_action_items keeps its own max_tokens, so "
                "its JSON can close); KV cache cleared before every call, so TTFT includes the prompt")


def _cap(task_id: str, max_tokens: int) -> int | None:
    from core.workspace import get_task

    if get_task(task_id).json_schema is not None:
        return None
    return min(max_tokens, get_task(task_id).prompt.max_tokens)


def main() -> int:
    parser = argparse.ArgumentParser(description="Workspace credit reservation throughput and per-task speed.")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--reservations", type=int, default=6000, help="reservations per measured arm, in total")
    parser.add_argument("--max-tokens", type=int, default=64, help="cap on each task's answer")
    parser.add_argument("--skip-model", action="store_true", help="only the credit benchmark")
    args = parser.parse_args()
    report = Report("workspace_credits", "workspace credit reservations under contention; TTFT per task")

    def body(r: Report) -> None:
        credits_part(r, args.threads, args.reservations)
        if not args.skip_model:
            tasks_part(r, args.max_tokens)

    return _common.run(report, body, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
