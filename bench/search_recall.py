"""Document search retrieval quality: recall@5 on the labelled question set over the demo corpus.

Each question in data/search/questions.jsonl names the document that answers it and is asked as a user with that
document's groups and clearance, through `retrieve()` (hybrid vectors + full text, thesaurus expansion, RRF, the
access prefilter), and again as a user who may read everything, so the whole corpus competes. Baseline in the same process: a plain vector search of the question as asked (no full text,
no expansion) under the same filter. Off-topic questions must come back "not covered" (coverage threshold).

    python bench/search_recall.py [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import _common
from _common import BENCH_VAR, REPO_ROOT, Report

TARGET_RECALL = 0.9


def body(report: Report) -> None:
    _common.fresh_core(HOME=str(BENCH_VAR / "search" / "recall_home"))
    from core.embeddings import embed
    from core.search import (
        _index,
        access_filter,
        forget_tables,
        principal_for,
        retrieve,
        sync_demo_corpus,
    )

    forget_tables()
    assert sync_demo_corpus().ok
    cases = [json.loads(line) for line in (REPO_ROOT / "data/search/questions.jsonl").read_text().splitlines()]
    table = _index.get_table()
    everything = principal_for("bench:recall", sorted({g for c in cases for g in c["groups"]}), 3)
    hits = base_hits = answerable = off_topic_ok = off_topic = covered_ok = wide_hits = 0
    rr, base_rr, latencies = [], [], []
    for case in cases:
        principal = principal_for("bench:recall", case["groups"], case["clearance"])
        t0 = time.perf_counter()
        result = retrieve(principal, case["question"], k=5, per_doc=1, channel="bench", use_llm_expansion=False,
                          audit=False)
        latencies.append((time.perf_counter() - t0) * 1000)
        if not case["expected"]:
            off_topic += 1
            off_topic_ok += not result.covered
            continue
        answerable += 1
        covered_ok += result.covered
        want = case["expected"][0]
        docs = result.doc_ids[:5]
        hits += want in docs
        wide = retrieve(everything, case["question"], k=5, per_doc=1, channel="bench", use_llm_expansion=False,
                        audit=False)
        wide_hits += want in wide.doc_ids[:5]
        rr.append(1 / (docs.index(want) + 1) if want in docs else 0.0)
        rows = _index.vector_search(table, embed([case["question"]])[0], access_filter(principal).expression, 20)
        base_docs = list(dict.fromkeys(r["doc_id"] for r in rows))[:5]
        base_hits += want in base_docs
        base_rr.append(1 / (base_docs.index(want) + 1) if want in base_docs else 0.0)
    recall, base_recall = hits / answerable, base_hits / answerable
    report.metric("questions", answerable, "", "labelled answerable questions")
    report.metric("recall_at_5", recall, "", "recall@5, hybrid + expansion")
    report.metric("mrr", sum(rr) / len(rr), "", "mean reciprocal rank, hybrid + expansion")
    report.metric("recall_at_5_all_access", wide_hits / answerable, "",
                  "recall@5 asked by a user who may read every document (the whole corpus competes)")
    report.metric("baseline_vector_recall_at_5", base_recall, "", "recall@5, vector search only (baseline)")
    report.metric("baseline_vector_mrr", sum(base_rr) / len(base_rr), "", "MRR, vector search only (baseline)")
    report.metric("recall_ratio_over_baseline", recall / base_recall if base_recall else float("nan"), "",
                  "recall@5 hybrid / vector only")
    report.metric("answerable_marked_covered", covered_ok / answerable, "", "answerable questions judged covered")
    report.metric("off_topic_marked_not_covered", off_topic_ok / max(1, off_topic), "",
                  f"off-topic questions judged not covered ({off_topic})")
    report.metric("retrieve_p50_ms", _common.median(latencies), "ms", "retrieve() p50 incl. embedding, demo corpus")
    report.check("recall_at_5", recall, ">=", TARGET_RECALL, "", "recall@5 on the labelled set")
    report.check("recall_at_5_all_access", wide_hits / answerable, ">=", TARGET_RECALL, "",
                 "recall@5 with the whole corpus visible")
    report.check("off_topic_marked_not_covered", off_topic_ok / max(1, off_topic), ">=", 1.0, "",
                 "off-topic questions say 'not covered'")
    forget_tables()
    print(f"[search_recall] {answerable} questions, {off_topic} off-topic", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    return _common.run(Report("search_recall", "document search recall@5 vs vector-only retrieval"), body, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
