"""Embedded model speed: TTFT and tokens/s through the gateway with the model in its worker process, against the
same model in-process behind the same gateway (the design before the worker) and llama.cpp called directly.

Default settings (tier "capable" → the embedded SmolLM2 model), a user message of ~200 tokens (measured with
the model's own tokenizer), max_tokens 128, temperature 0 so both arms generate the same text. One warm-up per
arm, then N runs per arm alternating the order. Baselines in the same run: the same engine in this process behind
the same gateway (what the worker costs) and `create_chat_completion(stream=True)` direct (what the gateway costs).

The KV cache is cleared (`Llama.reset()`) before every call: otherwise llama.cpp reuses the cached prompt
prefix and the time to first token would not include evaluating the prompt.

    python bench/embedded_model.py [--json] [--runs 3] [--prompt-tokens 200] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import _common
from _common import Report, median

# The worker runs llama.cpp's OpenMP threads with passive waits (core/llm/_embedded.py); give the in-process arms
# the same policy, before llama.cpp loads, so the comparison measures the process boundary and nothing else.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

FILLER = (
    "The harbour town kept its ledgers in a stone building by the quay. Every morning the clerks counted "
    "crates of salt fish, barrels of oil and bolts of wool, and every evening the harbour master compared "
    "their sums with the manifests of the ships that had sailed. When the numbers disagreed, which happened "
    "more often in winter, a boy was sent running along the wharf to find the captain before the tide turned. "
)
INSTRUCTION = "Continue this story in detail, in at least three long paragraphs:\n\n"

# Allowed gateway cost (targets), as ratios to llama.cpp direct: TTFT at most 5 % longer, decode at most 5 %
# slower. Ratios rather than milliseconds, because with 3 runs on 2 shared cores TTFT wobbles by ~2 %.
TARGET_TTFT_RATIO = 1.05
TARGET_TPS_RATIO = 0.95
TARGET_TTFT_ADDED_MS = 5.0  # what the worker process may add to TTFT over the model in-process


def build_prompt(llama, tokens: int) -> tuple[str, int]:
    """A user message whose tokenized length is about `tokens` (instruction + filler cut to fit)."""
    def count(s: str) -> int:
        return len(llama.tokenize(s.encode(), add_bos=False))

    head = count(INSTRUCTION)
    filler = FILLER
    while count(filler) < tokens:
        filler += FILLER
    ids = llama.tokenize(filler.encode(), add_bos=False)[: max(1, tokens - head)]
    text = INSTRUCTION + llama.detokenize(ids).decode("utf-8", "replace").strip()
    return text, count(text)


def time_stream(pieces) -> dict:
    """Consume an iterator of text pieces; time to first non-empty piece, count of pieces, total time."""
    started = time.perf_counter()
    ttft, n, out = None, 0, []
    for text in pieces:
        if not text:
            continue
        if ttft is None:
            ttft = time.perf_counter() - started
        n += 1
        out.append(text)
    total = time.perf_counter() - started
    decode = total - (ttft or 0.0)
    return {"ttft_ms": (ttft or total) * 1000, "tokens": n, "total_s": total,
            "decode_tps": (n - 1) / decode if n > 1 and decode > 0 else 0.0,
            "e2e_tps": n / total if total > 0 else 0.0, "text": "".join(out)}


def body(report: Report, runs: int, prompt_tokens: int, max_tokens: int) -> None:
    from core import db
    from core.llm import LLMRequest, build_gateway, close_providers
    from _inprocess import InProcessEmbeddedProvider

    with tempfile.TemporaryDirectory(prefix="keel-bench-") as home:
        settings = _common.fresh_core(HOME=home, LLM_TIMEOUT="600")  # a loaded machine must not fail the bench
        gateway = build_gateway(settings)
        target = settings.tiers["capable"][0]
        provider_name = target.split("/", 1)[0]
        worker = gateway.providers.get(provider_name)
        if worker is None or getattr(worker, "kind", None) != "embedded":
            raise RuntimeError(f"tier 'capable' maps to {target!r}, not the embedded model; check KEEL_* settings")
        inprocess = InProcessEmbeddedProvider(provider_name, settings)

        load_started = time.perf_counter()
        worker.load()
        load_s = time.perf_counter() - load_started
        engine = inprocess.load()
        llama = engine.llama
        prompt, n_prompt = build_prompt(llama, prompt_tokens)
        messages = [{"role": "user", "content": prompt}]

        def direct() -> dict:
            llama.reset()
            chunks = llama.create_chat_completion(messages=messages, max_tokens=max_tokens, temperature=0.0,
                                                  stop=None, stream=True)
            return time_stream(c["choices"][0].get("delta", {}).get("content") or "" for c in chunks)

        def via_gateway(provider) -> dict:
            gateway.providers[provider_name] = provider
            if provider is inprocess:
                llama.reset()
            else:
                worker.kv_clear()  # the worker's context is emptied the same way before every call
            request = LLMRequest(messages=messages, tier="capable", feature="bench", task="embedded",
                                 max_tokens=max_tokens, temperature=0.0)
            stream = gateway.stream(request)
            result = time_stream(chunk.text for chunk in stream)
            result["logged_tokens_out"] = stream.result.tokens_out if stream.result else None
            return result

        arms = {"direct": direct, "inprocess": lambda: via_gateway(inprocess), "worker": lambda: via_gateway(worker)}
        for arm in arms.values():  # warm-up: first-call allocations, page cache, thread pool
            arm()
        results = {name: [] for name in arms}
        order = list(arms)
        for i in range(runs):
            for name in (order if i % 2 == 0 else order[::-1]):
                results[name].append(arms[name]())
        gateway.providers[provider_name] = worker
        gateway.flush(timeout=30)
        gateway.close()
        close_providers(gateway)
        db.dispose_engine()

    d, p, w = results["direct"], results["inprocess"], results["worker"]
    d_ttft, p_ttft, w_ttft = (median([r["ttft_ms"] for r in arm]) for arm in (d, p, w))
    d_tps, p_tps, w_tps = (median([r["decode_tps"] for r in arm]) for arm in (d, p, w))
    same_text = all(a["text"] == b["text"] == c["text"] for a, b, c in zip(d, p, w))
    report.metric("model", target, label="tier capable ->")
    report.metric("threads", settings.embedded_threads, label="llama.cpp threads")
    report.metric("worker_load_s", load_s, "s", "worker start + model load time")
    report.metric("prompt_tokens", n_prompt, "tokens", "user message length (model tokenizer)")
    report.metric("max_tokens", max_tokens, "tokens", "max_tokens")
    report.metric("runs", runs, label="runs per arm (after 1 warm-up each)")
    report.metric("tokens_generated", median([r["tokens"] for r in w]), "tokens", "tokens generated (median)")
    report.metric("direct_ttft_ms", d_ttft, "ms", "llama.cpp direct: TTFT median")
    report.metric("inprocess_ttft_ms", p_ttft, "ms", "baseline gateway + in-process model: TTFT median")
    report.metric("worker_ttft_ms", w_ttft, "ms", "gateway + worker process: TTFT median")
    report.metric("worker_ttft_added_ms", w_ttft - p_ttft, "ms", "TTFT the worker adds over in-process")
    report.metric("ttft_ratio_worker_over_inprocess", w_ttft / p_ttft if p_ttft else None, "x")
    report.metric("ttft_ratio_gateway_over_direct", w_ttft / d_ttft if d_ttft else None, "x",
                  "ratio gateway (worker) / direct TTFT")
    report.metric("direct_decode_tps", d_tps, "tok/s", "llama.cpp direct: decode tok/s median")
    report.metric("inprocess_decode_tps", p_tps, "tok/s", "baseline gateway + in-process model: decode tok/s")
    report.metric("worker_decode_tps", w_tps, "tok/s", "gateway + worker process: decode tok/s median")
    report.metric("tps_ratio_worker_over_inprocess", w_tps / p_tps if p_tps else None, "x")
    report.metric("tps_ratio_gateway_over_direct", w_tps / d_tps if d_tps else None, "x")
    report.metric("worker_logged_tokens_out", w[-1].get("logged_tokens_out"), "tokens",
                  "tokens_out the gateway logged (last worker run)")
    report.metric("same_text", same_text, label="all three arms generated the same text")
    report.check("worker_ttft_added_ms", w_ttft - p_ttft, "<=", TARGET_TTFT_ADDED_MS, "ms",
                 "TTFT added by the worker process over in-process")
    report.check("tps_ratio_worker_over_inprocess", w_tps / p_tps if p_tps else None, ">=", TARGET_TPS_RATIO, "x",
                 "worker / in-process decode tok/s")
    report.check("ttft_ratio_gateway_over_direct", w_ttft / d_ttft if d_ttft else None, "<=", TARGET_TTFT_RATIO,
                 "x", "gateway (worker) / direct TTFT")
    report.note("decode tok/s = (tokens - 1) / (total - TTFT); a 'token' is one streamed text piece, which is "
                "one model token except where llama.cpp merges pieces of a multi-byte character")
    report.note("KV cache cleared before every call, so TTFT includes evaluating the whole prompt")


def main() -> int:
    parser = argparse.ArgumentParser(description="Embedded model TTFT and tokens/s: worker vs in-process vs direct.")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per arm (default 3)")
    parser.add_argument("--prompt-tokens", type=int, default=200, help="user message length in tokens")
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()
    report = Report("embedded_model", "embedded model TTFT and tokens/s: worker process vs in-process vs direct")
    return _common.run(report, lambda r: body(r, args.runs, args.prompt_tokens, args.max_tokens), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
