"""Embedded model speed: time to first token and tokens/s through the gateway vs llama.cpp called directly.

Default settings (tier "capable" → the embedded SmolLM2 model), a user message of ~200 tokens (measured with
the model's own tokenizer), max_tokens 128, temperature 0 so both arms generate the same text. One warm-up per
arm, then N runs per arm alternating which goes first. The baseline is the same `Llama` object's
`create_chat_completion(stream=True)` in the same process, so the ratios show what the gateway costs.

The KV cache is cleared (`Llama.reset()`) before every call: otherwise llama.cpp reuses the cached prompt
prefix and the time to first token would not include evaluating the prompt.

    python bench/embedded_model.py [--json] [--runs 3] [--prompt-tokens 200] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import _common
from _common import Report, median

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
    from core.llm import LLMRequest, build_gateway

    with tempfile.TemporaryDirectory(prefix="keel-bench-") as home:
        settings = _common.fresh_core(HOME=home)
        gateway = build_gateway(settings)
        target = settings.tiers["capable"][0]
        provider_name = target.split("/", 1)[0]
        provider = gateway.providers.get(provider_name)
        if provider is None or getattr(provider, "kind", None) != "embedded":
            raise RuntimeError(f"tier 'capable' maps to {target!r}, not the embedded model; check KEEL_* settings")

        load_started = time.perf_counter()
        llama = provider.load()
        load_s = time.perf_counter() - load_started
        prompt, n_prompt = build_prompt(llama, prompt_tokens)
        messages = [{"role": "user", "content": prompt}]

        def direct() -> dict:
            llama.reset()
            chunks = llama.create_chat_completion(messages=messages, max_tokens=max_tokens, temperature=0.0,
                                                  stop=None, stream=True)
            return time_stream(c["choices"][0].get("delta", {}).get("content") or "" for c in chunks)

        def via_gateway() -> dict:
            llama.reset()
            request = LLMRequest(messages=messages, tier="capable", feature="bench", task="embedded",
                                 max_tokens=max_tokens, temperature=0.0)
            stream = gateway.stream(request)
            result = time_stream(chunk.text for chunk in stream)
            result["logged_tokens_out"] = stream.result.tokens_out if stream.result else None
            return result

        direct()  # warm-up: first-call allocations, page cache, thread pool
        via_gateway()
        results = {"direct": [], "gateway": []}
        for i in range(runs):
            for arm in (("direct", "gateway") if i % 2 == 0 else ("gateway", "direct")):
                results[arm].append(direct() if arm == "direct" else via_gateway())
        gateway.log.flush(timeout=30)
        gateway.log.close()
        db.dispose_engine()

    d, g = results["direct"], results["gateway"]
    d_ttft, g_ttft = median([r["ttft_ms"] for r in d]), median([r["ttft_ms"] for r in g])
    d_tps, g_tps = median([r["decode_tps"] for r in d]), median([r["decode_tps"] for r in g])
    same_text = all(a["text"] == b["text"] for a, b in zip(d, g))
    report.metric("model", target, label="tier capable ->")
    report.metric("threads", settings.embedded_threads, label="llama.cpp threads")
    report.metric("load_s", load_s, "s", "model load time")
    report.metric("prompt_tokens", n_prompt, "tokens", "user message length (model tokenizer)")
    report.metric("max_tokens", max_tokens, "tokens", "max_tokens")
    report.metric("runs", runs, label="runs per arm (after 1 warm-up each)")
    report.metric("tokens_generated", median([r["tokens"] for r in g]), "tokens", "tokens generated (median)")
    report.metric("direct_ttft_ms", d_ttft, "ms", "baseline llama.cpp direct: TTFT median")
    report.metric("gateway_ttft_ms", g_ttft, "ms", "gateway: TTFT median")
    report.metric("ttft_ratio", g_ttft / d_ttft if d_ttft else None, "x", "ratio gateway / direct TTFT")
    report.metric("ttft_added_ms", g_ttft - d_ttft, "ms", "TTFT added by the gateway")
    report.metric("direct_decode_tps", d_tps, "tok/s", "baseline llama.cpp direct: decode tok/s median")
    report.metric("gateway_decode_tps", g_tps, "tok/s", "gateway: decode tok/s median")
    report.metric("tps_ratio", g_tps / d_tps if d_tps else None, "x", "ratio gateway / direct decode tok/s")
    report.metric("direct_e2e_tps", median([r["e2e_tps"] for r in d]), "tok/s", "direct: tokens / total time")
    report.metric("gateway_e2e_tps", median([r["e2e_tps"] for r in g]), "tok/s", "gateway: tokens / total time")
    report.metric("gateway_logged_tokens_out", g[-1].get("logged_tokens_out"), "tokens",
                  "tokens_out the gateway logged (last run)")
    report.metric("same_text", same_text, label="both arms generated the same text")
    report.check("ttft_ratio", g_ttft / d_ttft if d_ttft else None, "<=", TARGET_TTFT_RATIO, "x",
                 "gateway / direct TTFT")
    report.check("tps_ratio", g_tps / d_tps if d_tps else None, ">=", TARGET_TPS_RATIO, "x",
                 "gateway / direct decode tok/s")
    report.note("decode tok/s = (tokens - 1) / (total - TTFT); a 'token' is one streamed text piece, which is "
                "one model token except where llama.cpp merges pieces of a multi-byte character")
    report.note("KV cache cleared before every call, so TTFT includes evaluating the whole prompt")


def main() -> int:
    parser = argparse.ArgumentParser(description="Embedded model TTFT and tokens/s, gateway vs llama.cpp direct.")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per arm (default 3)")
    parser.add_argument("--prompt-tokens", type=int, default=200, help="user message length in tokens")
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()
    report = Report("embedded_model", "embedded model TTFT and tokens/s, gateway vs llama.cpp direct")
    return _common.run(report, lambda r: body(r, args.runs, args.prompt_tokens, args.max_tokens), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
