"""Document search retrieval latency with the access prefilter at 100,000 and 1,000,000 synthetic chunks.

What is timed is the index work of one retrieval without the LLM: for one phrasing, the vector search (top 20)
and the full-text search (top 20), run concurrently as `retrieve()` runs them (`_index.search_many`), both with the access prefilter a Principal produces (two groups of twelve
plus all-staff, clearance 2 of 0-3: about a third of the chunks are eligible), through the same
`core.search._index` calls `retrieve()` makes. Query vectors are precomputed (the encoder's own cost is measured
in bench/support_classifier.py, ~10 ms). Baselines in the same process on the same table: the same queries
without the filter (what the prefilter costs), and an exact numpy scan under the same access mask (what the index
buys). Synthetic data: 384-d vectors drawn around 512 cluster centres, texts of 24 words from a 3,000-word
vocabulary, access groups and clearance at random. Tables are built once and cached under var/bench/search
(the 1M build takes several minutes on 2 cores; later runs reuse it).

    python bench/search_retrieval.py [--json] [--sizes 100000,1000000] [--queries 200] [--rebuild]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time

import _common
import numpy as np
from _common import BENCH_VAR, Report, median, pct

TARGETS_P95_MS = {100_000: 50.0, 1_000_000: 150.0}
GROUPS = ["engineering", "support", "hr", "people-managers", "marketing", "executives", "it-admins", "finance",
          "legal", "sales", "facilities", "security"]
PRINCIPAL_GROUPS = ["all-staff", "engineering", "support"]
PRINCIPAL_CLEARANCE = 2
DIM = 384


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def synthetic(n: int, seed: int):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((512, DIM)).astype(np.float32)
    vocab = np.array([f"w{i:04d}" for i in range(3000)])
    batch = 50_000
    for start in range(0, n, batch):
        m = min(batch, n - start)
        which = rng.integers(0, 512, m)
        vecs = centres[which] + 0.6 * rng.standard_normal((m, DIM)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        words = vocab[rng.zipf(1.3, (m, 24)) % 3000]
        texts = [" ".join(row) for row in words]
        first = rng.integers(0, len(GROUPS), m)
        second = rng.integers(0, len(GROUPS), m)
        everyone = rng.random(m) < 0.15
        groups = [["all-staff"] if e else sorted({GROUPS[a], GROUPS[b]}) for a, b, e in zip(first, second, everyone)]
        levels = rng.integers(0, 4, m).astype(np.int32)
        yield start, vecs, texts, groups, levels


def build(directory, n: int, report: Report):
    """Create (or reuse) a chunk table of n synthetic rows with the production schema and indexes."""
    import pyarrow as pa

    from core.search import _index

    marker = directory / "complete"
    if marker.exists():
        return _index.get_table(directory)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    table = _index.get_table(directory)
    t0 = time.perf_counter()
    for start, vecs, texts, groups, levels in synthetic(n, seed=n):
        m = len(texts)
        ids = [f"doc{(start + i) // 4}" for i in range(m)]
        table.add(pa.table({
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1)), DIM),
            "text": texts, "fts_text": texts, "doc_id": ids,
            "chunk_id": [f"{d}#{(start + i) % 4}" for i, d in enumerate(ids)],
            "chunk_index": pa.array([(start + i) % 4 for i in range(m)], pa.int32()),
            "title": ids, "path": ids, "url": [None] * m, "access_groups": groups,
            "clearance_level": pa.array(levels, pa.int32()), "content_hash": ["x"] * m,
        }, schema=_index.SCHEMA))
        log(f"[search_retrieval] {n:,}: {start + m:,} rows written")
    _index.ensure_indexes(table, vector_index=n >= _index.ANN_MIN_ROWS)
    report.metric(f"build_{n}_s", time.perf_counter() - t0, "s", f"build {n:,} rows + indexes")
    marker.write_text("ok")
    return table


def load_matrix(n: int):
    vecs, groups_ok, levels = [], [], []
    allowed = set(PRINCIPAL_GROUPS)
    for _, v, _, groups, lv in synthetic(n, seed=n):
        vecs.append(v)
        groups_ok.append(np.array([bool(allowed & set(g)) for g in groups]))
        levels.append(lv)
    return np.concatenate(vecs), np.concatenate(groups_ok) & (np.concatenate(levels) <= PRINCIPAL_CLEARANCE)


def body(report: Report, sizes: list[int], queries: int, rebuild: bool) -> None:
    _common.fresh_core(HOME=str(BENCH_VAR / "search" / "home"))
    from core.auth import Principal
    from core.search import _index, access_filter

    expression = access_filter(Principal(sub="bench", groups=frozenset(PRINCIPAL_GROUPS),
                                         clearance=PRINCIPAL_CLEARANCE)).expression
    report.note(f"prefilter: {expression}")
    rng = np.random.default_rng(7)
    vocab = [f"w{i:04d}" for i in range(3000)]
    for n in sizes:
        directory = BENCH_VAR / "search" / f"chunks_{n}"
        if rebuild:
            shutil.rmtree(directory, ignore_errors=True)
        table = build(directory, n, report)
        log(f"[search_retrieval] {n:,}: measuring")
        matrix, mask = load_matrix(n)
        report.metric(f"eligible_share_{n}", float(mask.mean()), "", f"share of chunks the principal may see ({n:,})")
        picks = rng.integers(0, n, queries)
        qvecs = matrix[picks] + 0.3 * rng.standard_normal((queries, DIM)).astype(np.float32)
        qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)
        qtexts = [" ".join(rng.choice(vocab[:300], 3)) for _ in range(queries)]
        for q in range(5):  # warm caches and index files
            _index.vector_search(table, qvecs[q], expression, 20)
            _index.text_search(table, qtexts[q], expression, 20)
        filtered, unfiltered, exact, overlap = [], [], [], []
        for q in range(queries):
            t0 = time.perf_counter()
            rows, _ = _index.search_many(table, [qvecs[q]], [qtexts[q]], expression, 20)
            filtered.append((time.perf_counter() - t0) * 1000)
            assert all(set(r["access_groups"]) & set(PRINCIPAL_GROUPS) and r["clearance_level"] <= 2 for r in rows)
            t0 = time.perf_counter()
            _index.search_many(table, [qvecs[q]], [qtexts[q]], "true", 20)
            unfiltered.append((time.perf_counter() - t0) * 1000)
            if q < 40:
                t0 = time.perf_counter()
                scores = matrix @ qvecs[q]
                scores[~mask] = -2.0
                top = np.argpartition(-scores, 20)[:20]
                exact.append((time.perf_counter() - t0) * 1000)
                truth = {f"doc{i // 4}#{i % 4}" for i in top}
                overlap.append(len(truth & {r["chunk_id"] for r in rows}) / 20)
        report.metric(f"p50_ms_{n}", median(filtered), "ms", f"hybrid retrieval p50, prefiltered ({n:,})")
        report.metric(f"p95_ms_{n}", pct(filtered, 95), "ms", f"hybrid retrieval p95, prefiltered ({n:,})")
        report.metric(f"unfiltered_p95_ms_{n}", pct(unfiltered, 95), "ms", f"same queries without the filter ({n:,})")
        report.metric(f"numpy_exact_p50_ms_{n}", median(exact), "ms", f"exact numpy scan, vector only ({n:,})")
        report.metric(f"ratio_p95_filtered_over_unfiltered_{n}", pct(filtered, 95) / pct(unfiltered, 95), "",
                      f"prefilter cost ratio ({n:,})")
        report.metric(f"vector_recall_at_20_{n}", float(np.mean(overlap)), "",
                      f"vector top-20 overlap with the exact filtered top-20 ({n:,})")
        report.check(f"p95_ms_{n}", pct(filtered, 95), "<=", TARGETS_P95_MS.get(n, 150.0), "ms",
                     f"p95 with prefilter at {n:,} chunks")
        del matrix, mask
    report.note("the machine is shared with other engineers: latency figures are noisy; compare ratios")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached synthetic tables")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    report = Report("search_retrieval", "document search retrieval latency with the access prefilter")
    return _common.run(report, lambda r: body(r, sizes, args.queries, args.rebuild), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
