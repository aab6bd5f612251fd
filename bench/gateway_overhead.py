"""Gateway overhead: the latency Keel's gateway adds to a streamed call, against the bare `openai` SDK.

A tiny OpenAI-compatible server runs on loopback in a child process. The same streamed chat request is sent
N times straight through `openai.OpenAI(...)` and N times through `build_gateway()` (tier "capable" →
that server), alternating which goes first in each pair so drift cancels. Reports median and p95 per-call
latency of both, the median added latency (target ≤ 1 ms), and checks that all N gateway calls were logged.

    python bench/gateway_overhead.py [--json] [--calls 200] [--warmup 20]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import _common
from _common import Report, median, ms_since, pct
from _loopback import ANSWER_PIECES, LoopbackServer

TARGET_ADDED_MS = 1.0
MESSAGES = [{"role": "user", "content": "Say hello to the benchmark."}]


def body(report: Report, calls: int, warmup: int) -> None:
    import openai
    from sqlalchemy import text

    from core import db
    from core.llm import LLMRequest, build_gateway

    expected = "".join(ANSWER_PIECES)
    with LoopbackServer(max_seconds=600) as server, tempfile.TemporaryDirectory(prefix="keel-bench-") as home:
        settings = _common.fresh_core(
            HOME=home,
            PROVIDERS=json.dumps({"local": {"kind": "openai", "base_url": server.url, "api_key": "k"}}),
            TIERS=json.dumps({"capable": ["local/m"]}),
        )
        gateway = build_gateway(settings)
        client = openai.OpenAI(base_url=server.url, api_key="k", max_retries=0)

        # the very request the gateway's OpenAI provider sends for an LLMRequest with default fields
        defaults = LLMRequest(messages=MESSAGES)
        direct_kwargs = dict(model="m", messages=MESSAGES, max_tokens=defaults.max_tokens,
                             temperature=defaults.temperature, stream=True,
                             stream_options={"include_usage": True})

        def direct() -> tuple[float, str]:
            started = time.perf_counter()
            stream = client.chat.completions.create(**direct_kwargs)
            pieces = []
            try:
                for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta and chunk.choices[0].delta.content:
                        pieces.append(chunk.choices[0].delta.content)
            finally:
                stream.close()
            return ms_since(started), "".join(pieces)

        def through_gateway(task: str) -> tuple[float, str]:
            started = time.perf_counter()
            result = gateway.complete(LLMRequest(messages=MESSAGES, tier="capable", feature="bench", task=task))
            return ms_since(started), result.text

        # the non-streaming path of the server works too (sanity, not timed)
        plain = client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=16)
        if plain.choices[0].message.content != expected:
            report.fail(f"non-streaming answer was {plain.choices[0].message.content!r}")

        for i in range(warmup):
            direct()
            through_gateway("warmup")
        gateway.flush()

        direct_ms: list[float] = []
        gateway_ms: list[float] = []
        wrong = 0
        for i in range(calls):
            order = ("direct", "gateway") if i % 2 == 0 else ("gateway", "direct")
            for arm in order:
                if arm == "direct":
                    elapsed, answer = direct()
                    direct_ms.append(elapsed)
                else:
                    elapsed, answer = through_gateway("measure")
                    gateway_ms.append(elapsed)
                wrong += answer != expected

        flush_started = time.perf_counter()
        gateway.flush(timeout=30)
        flush_ms = ms_since(flush_started)

        # Amortized CPU per call, in blocks (ABBA order), so the background log writer's work is charged to
        # the gateway: in the interleaved run above it also overlaps, and slows, the direct calls.
        block = max(1, calls // 2)
        cpu = {"direct": [], "gateway": []}
        for arm in ("direct", "gateway", "gateway", "direct"):
            cpu_started = time.process_time()
            for _ in range(block):
                direct() if arm == "direct" else through_gateway("block")
            if arm == "gateway":
                gateway.flush(timeout=30)
            cpu[arm].append((time.process_time() - cpu_started) * 1000 / block)
        with db.get_engine().connect() as conn:
            logged = conn.execute(text(
                "SELECT COUNT(*) FROM request_log WHERE feature = 'bench' AND task = 'measure'")).scalar_one()
            logged_ok = conn.execute(text(
                "SELECT COUNT(*) FROM request_log WHERE feature = 'bench' AND task = 'measure' AND status = 'ok'"
            )).scalar_one()
            rollup_n = conn.execute(text("SELECT COALESCE(SUM(n), 0) FROM log_rollup_time")).scalar_one()
        gateway.close()
        db.dispose_engine()

    d_med, g_med = median(direct_ms), median(gateway_ms)
    paired = [g - d for d, g in zip(direct_ms, gateway_ms)]
    added = median(paired)  # each pair ran back to back, so drift cancels within it
    cpu_d, cpu_g = sum(cpu["direct"]) / 2, sum(cpu["gateway"]) / 2
    report.metric("calls_per_arm", calls, label="calls per arm (after warm-up)")
    report.metric("warmup_per_arm", warmup, label="warm-up calls per arm")
    report.metric("direct_median_ms", d_med, "ms", "baseline: openai SDK direct, median")
    report.metric("direct_p95_ms", pct(direct_ms, 95), "ms", "baseline: openai SDK direct, p95")
    report.metric("gateway_median_ms", g_med, "ms", "Keel gateway, median")
    report.metric("gateway_p95_ms", pct(gateway_ms, 95), "ms", "Keel gateway, p95")
    report.metric("ratio_median", g_med / d_med if d_med else None, "x", "ratio gateway / direct (median)")
    report.metric("ratio_p95", pct(gateway_ms, 95) / pct(direct_ms, 95), "x", "ratio gateway / direct (p95)")
    report.metric("added_median_ms", added, "ms", "added latency (median of paired differences)")
    report.metric("added_p95_ms", pct(paired, 95), "ms", "added latency (p95 of paired differences)")
    report.metric("median_difference_ms", g_med - d_med, "ms", "median gateway - median direct")
    report.metric("cpu_direct_ms_per_call", cpu_d, "ms", "client CPU per call, direct (blocks)")
    report.metric("cpu_gateway_ms_per_call", cpu_g, "ms", "client CPU per call, gateway incl. log writer")
    report.metric("cpu_added_ms_per_call", cpu_g - cpu_d, "ms", "added CPU per call (amortized)")
    report.metric("logged_rows", logged, label="request_log rows for measured calls")
    report.metric("logged_ok_rows", logged_ok, label="  of which status ok")
    report.metric("rollup_rows_counted", rollup_n,
                  label="calls in log_rollup_time (warm-up + measured + CPU blocks)")
    report.metric("log_flush_ms", flush_ms, "ms", "time for gateway.flush() after the run")
    report.metric("log_failed", gateway.stats()["failed"], label="log rows dropped by the writer")
    report.check("added_median_ms", added, "<=", TARGET_ADDED_MS, "ms", "median added latency")
    report.check("logged_rows", logged, "==", calls, "", "every gateway call logged")
    report.check("wrong_answers", wrong, "==", 0, "", "answers equal the server's text")
    report.note("added latency = median over the pairs of (gateway - direct), each pair run back to back "
                "in alternating order; the difference of the two medians is shown too but is noisier")
    report.note("server runs in a child process, so its CPU does not share the client's GIL; "
                "the gateway's background log writer does share it (that cost is part of the overhead)")


def main() -> int:
    parser = argparse.ArgumentParser(description="Latency the Keel gateway adds over the bare openai SDK.")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--calls", type=int, default=200, help="measured calls per arm (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up calls per arm (default 20)")
    args = parser.parse_args()
    report = Report("gateway_overhead", "latency added by the gateway vs the openai SDK (loopback server)")
    return _common.run(report, lambda r: body(r, args.calls, args.warmup), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
