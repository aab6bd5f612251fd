"""Retrieval: query expansion (a thesaurus in data, optionally the fast LLM tier), vector and full-text search per
phrasing under the access prefilter, reciprocal-rank fusion, a coverage score, and an audit row for every call."""

from __future__ import annotations

import re
import time
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from core.auth import Principal
from core.config import REPO_ROOT, get_settings
from core.errors import KeelError
from core.search import _index, _registry
from core.search._access import AccessFilter, access_filter

SYNONYMS_FILE = REPO_ROOT / "data" / "search" / "synonyms.toml"
MAX_QUERY_CHARS = 2000
MAX_K = 20
RRF_K = 10  # sharper than the usual 60: with several phrasings, a document ranked first by the expansions
# should beat one that is mediocre everywhere ("policy" matches every policy)
CANDIDATES = 20  # per phrasing and per retriever
MAX_PHRASINGS = 4
# Best cosine similarity (question or any phrasing vs a retrieved chunk) below which the documents "do not cover"
# the question: no model call, the user is told so. Measured on data/search/questions.jsonl with all-MiniLM-L6-v2:
# answerable questions score >= 0.28 but one (0.21), off-topic ones at most 0.17, and a question about a document
# the asker may not see ("Project Nightjar" for the intern) 0.21 against what they can see.
COVERAGE_THRESHOLD = 0.25
CHANNELS = ("ui", "api", "cli", "eval", "bench", "test")


class SearchInputError(KeelError, ValueError):
    """The question cannot be searched as given; the message says why."""


@dataclass(frozen=True)
class RetrievedChunk:
    doc_id: str
    chunk_id: str
    title: str
    path: str
    url: str | None
    text: str
    access_groups: tuple[str, ...]
    clearance_level: int
    score: float  # fused RRF score
    similarity: float  # best cosine similarity to the question or one of its phrasings


@dataclass
class Retrieval:
    query: str
    phrasings: list[str]
    filter_expr: str
    access: AccessFilter
    chunks: list[RetrievedChunk]
    best_similarity: float
    covered: bool
    audit_id: int | None
    latency_ms: float
    rejected: int = 0  # rows that failed the re-check (always 0 unless the index disobeyed the prefilter)
    expanded_by: list[str] = field(default_factory=list)

    @property
    def doc_ids(self) -> list[str]:
        return list(dict.fromkeys(c.doc_id for c in self.chunks))


def clean_query(query) -> str:
    if not isinstance(query, str):
        raise SearchInputError("the question must be text")
    query = "".join(c if c >= " " or c in "\n\t" else " " for c in query).strip()
    query = re.sub(r"\s+", " ", query)
    if not query:
        raise SearchInputError("type a question to search for")
    if len(query) > MAX_QUERY_CHARS:
        raise SearchInputError(f"the question is {len(query):,} characters long; the limit is {MAX_QUERY_CHARS:,}")
    return query


@lru_cache(maxsize=1)
def synonym_groups() -> tuple[tuple[str, ...], ...]:
    """Groups of interchangeable terms from data/search/synonyms.toml (first term = the canonical one)."""
    data = tomllib.loads(SYNONYMS_FILE.read_text(encoding="utf-8"))
    return tuple(tuple(t.lower() for t in group) for group in data.get("groups", []) if len(group) > 1)


def thesaurus_phrasings(query: str) -> list[str]:
    """Alternative phrasings from the thesaurus: each matched term swapped for its group's other terms."""
    low = query.lower()
    out: list[str] = []
    extra_terms: list[str] = []
    for group in synonym_groups():
        for term in group:
            pattern = r"(?<![\w-])" + re.escape(term) + r"(?![\w-])"
            if re.search(pattern, low):
                others = [t for t in group if t != term]
                out.append(re.sub(pattern, others[0], low, count=1))
                extra_terms += others[1:]
                break
    if extra_terms:
        out.append(low + " " + " ".join(extra_terms))
    return out


def llm_expansion_default() -> bool:
    """Ask the fast tier for phrasings only when it is not the tiny embedded model (which mostly echoes)."""
    chain = get_settings().tiers.get("fast") or []
    return bool(chain) and not chain[0].startswith("embedded/")


EXPAND_SCHEMA = {
    "type": "object",
    "properties": {"phrasings": {"type": "array", "maxItems": 3,
                                 "items": {"type": "string", "minLength": 2, "maxLength": 160,
                                           "pattern": '^[^"\\\\\\x00-\\x1f]{2,160}$'}}},
    "required": ["phrasings"],
    "additionalProperties": False,
}


def llm_phrasings(query: str, user: str) -> list[str]:
    """Phrasings from the fast tier (feature search, task expand); any failure means none, never an error."""
    from core.llm import LLMError, LLMRequest, get_gateway
    from core.prompts import load

    prompt = load("search/expand")
    request = LLMRequest.from_prompt(prompt, {"question": query[:500]}, feature="search", task="expand", user=user,
                                     json_schema=EXPAND_SCHEMA)
    try:
        result = get_gateway().complete(request)
    except LLMError:
        return []
    items = (result.json or {}).get("phrasings", []) if isinstance(result.json, dict) else []
    return [p.strip() for p in items if isinstance(p, str) and p.strip()][:3]


def phrasings_for(query: str, *, user: str, use_llm: bool | None) -> tuple[list[str], list[str]]:
    """(phrasings, where each extra one came from); the question as asked is always first."""
    phrasings, sources = [query], []
    for p in thesaurus_phrasings(query):
        if p.lower() not in {x.lower() for x in phrasings}:
            phrasings.append(p)
            sources.append("thesaurus")
    if use_llm if use_llm is not None else llm_expansion_default():
        for p in llm_phrasings(query, user):
            if p.lower() not in {x.lower() for x in phrasings}:
                phrasings.append(p)
                sources.append("llm")
    return phrasings[:MAX_PHRASINGS], sources[:MAX_PHRASINGS - 1]


def retrieve(principal: Principal, query: str, *, k: int = 5, per_doc: int = 2, channel: str = "ui",
             use_llm_expansion: bool | None = None, audit: bool = True) -> Retrieval:
    """The top `k` chunks this principal may see (at most `per_doc` per document), fused over phrasings and
    retrievers. The access filter is built from the principal alone and runs inside LanceDB as a prefilter;
    every returned row is re-checked against it anyway. Writes one audit row."""
    from core.embeddings import embed

    started = time.perf_counter()
    query = clean_query(query)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise SearchInputError(f"k must be an integer from 1 to {MAX_K}")
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    access = access_filter(principal)
    expression = access.expression
    phrasings, expanded_by = phrasings_for(query, user=principal.sub, use_llm=use_llm_expansion)
    vectors = embed(phrasings)
    table = _index.get_table()
    fused: dict[str, float] = {}
    rows: dict[str, dict] = {}
    rejected = 0
    for results in _index.search_many(table, vectors, phrasings, expression, CANDIDATES):
        for rank, row in enumerate(results):
            if not access.allows(row["access_groups"], row["clearance_level"]):
                rejected += 1  # fail closed: never shown, counted so a test can prove it stays zero
                continue
            fused[row["chunk_id"]] = fused.get(row["chunk_id"], 0.0) + 1.0 / (RRF_K + rank + 1)
            rows.setdefault(row["chunk_id"], row)
    ranked = sorted(fused, key=lambda cid: (-fused[cid], cid))
    chunks: list[RetrievedChunk] = []
    per_doc_count: dict[str, int] = {}
    for cid in ranked:
        row = rows[cid]
        if per_doc_count.get(row["doc_id"], 0) >= per_doc:
            continue
        per_doc_count[row["doc_id"]] = per_doc_count.get(row["doc_id"], 0) + 1
        similarity = float(np.max(vectors @ np.asarray(row["vector"], dtype=np.float32)))
        chunks.append(RetrievedChunk(row["doc_id"], cid, row["title"], row["path"], row["url"], row["text"],
                                     tuple(row["access_groups"]), int(row["clearance_level"]), round(fused[cid], 6),
                                     round(similarity, 4)))
        if len(chunks) >= k:
            break
    best = max((c.similarity for c in chunks), default=0.0)
    latency = (time.perf_counter() - started) * 1000
    audit_id = None
    if audit:
        audit_id = _registry.record_audit(principal.sub, channel, query, expression,
                                          list(dict.fromkeys(c.doc_id for c in chunks)),
                                          [c.chunk_id for c in chunks], latency)
    return Retrieval(query=query, phrasings=phrasings, filter_expr=expression, access=access, chunks=chunks,
                     best_similarity=best, covered=best >= COVERAGE_THRESHOLD, audit_id=audit_id,
                     latency_ms=latency, rejected=rejected, expanded_by=expanded_by)
