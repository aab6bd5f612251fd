"""Snapshot eval decay: time of one feature's report over 2,000 production inputs, against the bare encoder on the
same texts, and the data behind the default covering distance.

Production: 2,500 answered `support` calls in request_log (the newest 2,000 are embedded: the cap), the texts being
the support classifier's training messages (never eval inputs) and the document-search eval questions (another
feature's inputs, which should come out uncovered and clustered). Eval inputs: the real `support` suites (held-out
intents, the external test set written by another hand, routes). Arms, in one process on a fresh SQLite file:
  baseline  `core.embeddings.embed` of the same distinct texts the report embeds (encoder already loaded)
  cold      `decay_report("support")` with no cached vectors (every text encoded, then stored)
  warm      the same report again (vectors read from the SQL cache; what a daily report or a page visit costs)
Calibration of the default distance d: for each candidate d, the share of inputs of *another* feature that an eval
input "covers" (search questions vs support cases, support messages vs search questions, meeting notes vs both),
and the share of the same feature's unseen messages covered. The default is the largest d with ≤ 5 % cross-feature.

    python bench/eval_decay.py [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid

import _common
from _common import REPO_ROOT, Report

TARGET_WARM_MS = 3000.0  # "a few seconds" for 2,000 inputs on 2 cores, steady state
TARGET_COLD_RATIO = 1.25  # the cold report costs at most a quarter more than encoding its texts
TARGET_CROSS_FEATURE = 0.05
CANDIDATES = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _jsonl(path: str, where: dict | None = None) -> list[str]:
    out = []
    for line in (REPO_ROOT / path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            if all(record.get(k) == v for k, v in (where or {}).items()):
                out.append(record.get("input", record.get("text")))
    return out


def _rows(texts: list[str], start: float) -> list[dict]:
    from core.llm import latency_bucket

    return [dict(request_id=uuid.uuid4().hex, attempt=0, created_at=start - i, feature="support", task="answer",
                 prompt_id="support/faq_answer", prompt_version="v1", tier="capable", provider="p", model="m",
                 user="u", customer="c", input_text=f"[system] Answer from the article.\n\n[user] Article:\n<data>\n"
                 f"passage\n</data>\nCustomer question:\n<data>\n{t}\n</data>", output_text="ok", tokens_in=50,
                 tokens_out=20, ttft_ms=50.0, latency_ms=200.0, latency_bucket=latency_bucket(200.0), cost_usd=0.0,
                 status="ok", error=None, refusal=False, json_valid=None, metadata_json=None)
            for i, t in enumerate(texts)]


def body(report: Report) -> None:
    home = tempfile.mkdtemp(prefix="keel-bench-decay-")
    _common.fresh_core(HOME=home)
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np

    from core import db
    from core.embeddings import embed, get_encoder
    from core.llm import record_log_rows
    from core.observe import decay_features, decay_report
    from core.observe._decay import eval_inputs, nearest_distance, vectors

    train = _jsonl("data/support/intents.jsonl", {"split": "train"})
    search = _jsonl("data/evals/search.jsonl")
    notes = _jsonl("data/evals/action_items.jsonl")
    newest = train[:2000 - len(search)] + search
    older = train[:500]  # in the window, beyond the cap
    now = time.time()
    with db.get_engine().begin() as conn:
        record_log_rows(conn, _rows(newest, now - 60))
        record_log_rows(conn, _rows(older, now - 3600 - len(newest)))
    evals = sorted(set(eval_inputs(decay_features()["support"])))
    distinct = list(dict.fromkeys(newest))

    log("[eval_decay] loading the encoder")
    get_encoder().encode(["warm up"], show_progress_bar=False)
    t0 = time.perf_counter()
    embed(evals + distinct)
    baseline_ms = (time.perf_counter() - t0) * 1000
    log(f"[eval_decay] baseline: {len(evals) + len(distinct)} texts in {baseline_ms:.0f} ms")
    cold = decay_report("support", days=7)
    warm = decay_report("support", days=7)
    log(f"[eval_decay] cold {cold['timings']['total_ms']:.0f} ms, warm {warm['timings']['total_ms']:.0f} ms")

    report.metric("texts_embedded", len(evals) + len(distinct), "", "distinct texts a cold report embeds")
    report.metric("production_sampled", cold["production"]["sampled"], "", "production inputs embedded (cap)")
    report.metric("production_in_window", cold["production"]["in_window"], "", "production calls in the window")
    report.metric("baseline_ms", baseline_ms, "ms", "baseline: bare encoder on the same texts")
    for key, value in cold["timings"].items():
        report.metric(f"cold_{key}", value, "ms", f"cold report: {key}")
    for key, value in warm["timings"].items():
        report.metric(f"warm_{key}", value, "ms", f"warm report: {key}")
    report.metric("uncovered_share", cold["uncovered_share"], "", "uncovered share (d = default)")
    report.metric("clusters", len(cold["clusters"]), "", "uncovered clusters")
    search_set = set(search)
    best = max(cold["clusters"], key=lambda c: sum(e in search_set for e in c["examples"]), default=None)
    if best:
        report.note(f"cluster with search questions: {best['size']} inputs, e.g. {best['examples']}")

    vec = {t: v for t, v in zip(evals + distinct + notes, vectors(evals + distinct + notes)[0])}
    support_eval = np.array([vec[t] for t in evals])
    search_eval = np.array([vec[t] for t in search])
    notes_v = np.array([vec[t] for t in notes])
    train_v = np.array([vec[t] for t in train[:2000 - len(search)]])
    cross = np.concatenate([nearest_distance(search_eval, support_eval), nearest_distance(train_v, search_eval),
                            nearest_distance(notes_v, support_eval), nearest_distance(notes_v, search_eval)])
    same = nearest_distance(train_v, support_eval)
    for d in CANDIDATES:
        report.metric(f"cross_feature_covered_at_{d}", float(np.mean(cross <= d)), "",
                      f"d={d}: inputs of another feature counted covered")
        report.metric(f"same_feature_covered_at_{d}", float(np.mean(same <= d)), "",
                      f"d={d}: unseen support messages covered")
    default = cold["distance"]
    report.check("warm_total_ms", warm["timings"]["total_ms"], "<=", TARGET_WARM_MS, "ms",
                 "warm report, 2,000 production inputs")
    report.check("cold_ratio", cold["timings"]["total_ms"] / baseline_ms, "<=", TARGET_COLD_RATIO, "x",
                 "cold report / bare encoder on its texts")
    report.check("cross_feature_covered_at_default", float(np.mean(cross <= default)), "<=", TARGET_CROSS_FEATURE,
                 "", f"another feature's inputs covered at the default d={default}")
    report.check("capped", cold["production"]["sampled"], "==", 2000, "", "production sample capped at 2,000")
    log(f"[eval_decay] home {home}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = Report("eval_decay", "snapshot eval decay report time vs the bare encoder; default distance")
    return _common.run(report, body, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
