"""Snapshot eval decay: eval suites are snapshots of what users asked when they were written, and production moves
on. Per feature, the share of recent production inputs with no eval input nearby (embedding distance), the clusters
those uncovered inputs form (with examples, so a person can write the missing cases), and whether the feature's
suites still separate two models. Each report is stored in SQL; a sample of a cluster can go to the review queue.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from enum import StrEnum
from typing import NotRequired, TypedDict

import numpy as np
from sqlalchemy import text
from sqlmodel import col, select
from threadpoolctl import threadpool_limits

from core import db
from core.errors import KeelError
from core.llm import RequestStatus
from core.tables import DecayReport, DecayVector, EvalRun, table_of

DEFAULT_DAYS = 7.0
MAX_DAYS = 3650.0
# Cosine distance under which a production input counts as covered by an eval input. Chosen on the repo's own
# labelled sets (bench/eval_decay.py prints the table): at 0.45 only 3 % of inputs from a *different* feature
# (search questions vs support cases and the reverse, meeting notes vs both) have an eval input that close, while
# half of the support classifier's training messages (the same kind of request, other wording) do; at 0.5 the
# cross-feature share doubles to 6 %, at 0.55 it is 12 %.
DEFAULT_DISTANCE = 0.45
PRODUCTION_CAP = 2000  # the most recent answered calls in the window; older ones are counted, not embedded
MAX_CLUSTERS = 8
EXAMPLES_PER_CLUSTER = 3
MAX_SEND = 50  # rows one click may add to the review queue
DECAY_CHARS = 600  # ~128 word pieces: the opening of an input says what kind it is, and the encoder cost is linear
VECTOR_TTL_S = 90 * 86400  # cached vectors older than this are dropped (re-encoded if their text comes back)
_USER_TURN = re.compile(r"(?:^|\n\n)\[user\] ", re.S)
_NEXT_TURN = re.compile(r"\n\n\[(?:system|assistant|tool)\] ")
_DATA = re.compile(r"<data>(.*?)</data>", re.S)


class DecayError(KeelError, ValueError):
    """A decay request that cannot be taken (unknown feature, bad window or distance); nothing was stored."""


class Discrimination(StrEnum):
    """Whether a suite's latest runs of two different models still score apart."""

    DISCRIMINATES = "discriminates"  # the spread is larger than the suite's own tolerance
    NO_SPREAD = "no_spread"  # two models score within the tolerance: the suite no longer tells them apart
    NO_TWO_MODEL_RUNS = "no two-model runs"
    NO_MODEL = "calls no model"  # the suite's target calls no LLM: there is nothing to compare


class Cluster(TypedDict):
    """One cluster of uncovered production inputs in a stored report (`sent` grows as samples go to review)."""

    size: int
    share: float
    examples: list[str]
    nearest_eval_distance: float
    request_ids: list[str]
    sent: list[str]
    cluster: NotRequired[int]  # its rank by size, set once the clusters are sorted


# -- inputs ---------------------------------------------------------------------------------------------------------


def user_text(raw: str) -> str:
    """What the user wrote: the last [user] turn of a rendered chat, and in it the last <data> block.

    Logged inputs are whole prompts; their system text and template words are the same on every call of a feature
    and would make every input look alike."""
    value = raw or ""
    turns = list(_USER_TURN.finditer(value))
    if turns:
        value = value[turns[-1].end():]
        end = _NEXT_TURN.search(value)
        value = value[:end.start()] if end else value
    blocks = _DATA.findall(value)
    if blocks:
        value = blocks[-1]
    return value.strip()[:DECAY_CHARS]


def decay_features() -> dict[str, list]:
    """Feature → its suites (a feature is known when at least one suite names it)."""
    from core.evals import load_suites

    out: dict[str, list] = {}
    for suite in load_suites().values():
        out.setdefault(suite.feature, []).append(suite)
    return out


def eval_inputs(suites: list) -> list[str]:
    """Every dataset, extra-dataset and collected case input of the suites, as the user wrote it."""
    from core.evals import load_cases

    texts: list[str] = []
    for suite in suites:
        texts.extend(user_text(c.input) for c in load_cases(suite, include_collected=True))
    return [t for t in texts if t]


def production_inputs(feature: str, days: float, cap: int = PRODUCTION_CAP, *,
                      now: float | None = None) -> tuple[list[dict], int]:
    """The newest `cap` answered calls of the feature in the window (never feature `eval`) and how many there were.

    Answered calls only: they are what a reviewer can judge, and a failed attempt's input reaches the sample through
    the attempt that answered it."""
    since = (now or time.time()) - days * 86400
    where = ("feature = :f AND feature <> 'eval' AND created_at >= :since AND status IN (:ok, :fallback) "
             "AND input_text IS NOT NULL AND input_text <> '[redacted]'")
    params = {"f": feature, "since": since, "ok": RequestStatus.OK, "fallback": RequestStatus.FALLBACK}
    with db.get_engine().connect() as conn:
        total = conn.execute(text(f"SELECT COUNT(DISTINCT request_id) FROM request_log WHERE {where}"),
                             params).scalar_one()
        rows = conn.execute(text(
            f"SELECT request_id, input_text, created_at FROM request_log WHERE {where} "
            "ORDER BY created_at DESC, id DESC LIMIT :cap"), {**params, "cap": cap * 2}).mappings().all()
    out, seen = [], set()
    for r in rows:
        if r["request_id"] in seen:
            continue
        seen.add(r["request_id"])
        out.append({"request_id": r["request_id"], "text": user_text(r["input_text"]), "at": r["created_at"]})
        if len(out) >= cap:
            break
    return [r for r in out if r["text"]], int(total)


# -- vectors ----------------------------------------------------------------------------------------------------------


def _key(value: str) -> str:
    from core.embeddings import ENCODER_NAME

    return hashlib.blake2b(f"{ENCODER_NAME}\0{value}".encode("utf-8", "replace"), digest_size=16).hexdigest()


def vectors(texts: list[str]) -> tuple[np.ndarray, int]:
    """Unit vectors of distinct texts, read from the SQL cache where present; the rest encoded in one batch and
    stored, so a report re-encodes only inputs it has not seen (in any process). Returns (vectors, encoded)."""
    from core.embeddings import DIMENSIONS, embed

    keys = [_key(t) for t in texts]
    found: dict[str, np.ndarray] = {}
    with db.session() as s:
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            for key, blob in s.exec(select(DecayVector.key, DecayVector.vector).where(col(DecayVector.key).in_(chunk))):
                found[key] = np.frombuffer(blob, dtype=np.float32)
    missing = [i for i, k in enumerate(keys) if k not in found]
    if missing:
        fresh = embed([texts[i] for i in missing])
        now = time.time()
        rows = [{"key": keys[i], "vector": fresh[j].astype(np.float32).tobytes(), "created_at": now}
                for j, i in enumerate(missing)]
        with db.get_engine().begin() as conn:
            db.insert_ignoring_duplicates(conn, table_of(DecayVector), rows)
            conn.execute(text("DELETE FROM decay_vector WHERE created_at < :old"), {"old": now - VECTOR_TTL_S})
        for j, i in enumerate(missing):
            found[keys[i]] = fresh[j]
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32), 0
    return np.vstack([found[k] for k in keys]).astype(np.float32), len(missing)


def nearest_distance(queries: np.ndarray, reference: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Cosine distance from each query to its nearest reference vector (both unit length)."""
    if not len(reference):
        return np.full(len(queries), 2.0, dtype=np.float32)
    out = np.empty(len(queries), dtype=np.float32)
    for i in range(0, len(queries), chunk):
        out[i:i + chunk] = 1.0 - (queries[i:i + chunk] @ reference.T).max(axis=1)
    return np.clip(out, 0.0, 2.0)


# -- clusters ---------------------------------------------------------------------------------------------------------


def _p(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.float64)
    return v / v.sum()


def _kmeans(x: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator, iters: int = 25):
    """Weighted spherical k-means with k-means++ seeding: unit centroids, cosine distance."""
    centres = [x[rng.choice(len(x), p=_p(w))]]
    for _ in range(1, k):
        d = np.clip(1.0 - (x @ np.array(centres).T).max(axis=1), 0, None) * w
        if d.sum() <= 0:
            break
        centres.append(x[rng.choice(len(x), p=_p(d))])
    c = np.array(centres)
    xw = x * w[:, None]
    for _ in range(iters):
        labels = (x @ c.T).argmax(axis=1)
        new = np.eye(len(c), dtype=x.dtype)[labels].T @ xw  # weighted sums per cluster (np.add.at is far slower)
        norms = np.linalg.norm(new, axis=1)
        keep = norms > 0
        new[keep] /= norms[keep, None]
        new[~keep] = c[~keep]
        if np.allclose(new, c, atol=1e-5):
            break
        c = new
    labels = (x @ c.T).argmax(axis=1)
    dist = np.clip(1.0 - (x * c[labels]).sum(axis=1), 0, 2)
    return labels, c, dist


def cluster(x: np.ndarray, weights: np.ndarray, radius: float, max_k: int = MAX_CLUSTERS, seed: int = 0):
    """The fewest clusters (at most `max_k`) whose members lie on average within `radius` of their centre.

    Returns (labels, distance of each point to its centre)."""
    if len(x) == 0:
        return np.zeros(0, dtype=int), np.zeros(0)
    x, weights = x.astype(np.float32), np.asarray(weights, dtype=np.float32)
    rng = np.random.default_rng(seed)
    best = None
    for k in range(1, min(max_k, len(x)) + 1):
        tries = [_kmeans(x, weights, k, rng) for _ in range(3)]
        labels, _, dist = min(tries, key=lambda t: float((t[2] * weights).sum()))
        best = (labels, dist)
        if float((dist * weights).sum() / weights.sum()) <= radius:
            break
    return best


# -- discrimination ---------------------------------------------------------------------------------------------------


def suite_spread(suite) -> dict:
    """The latest finished runs of the two most recently run models on the suite, and their score spread."""
    row = {"suite": suite.name, "tolerance": suite.tolerance, "models": [], "spread": None}
    with db.session() as s:
        runs = s.exec(select(EvalRun).where(EvalRun.suite == suite.name, col(EvalRun.status).in_(("passed", "failed")),
                                            col(EvalRun.score).is_not(None))
                      .order_by(col(EvalRun.started_at).desc(), col(EvalRun.id).desc()).limit(500)).all()
    latest: dict[str, tuple[EvalRun, float]] = {}
    for run in runs:
        if run.score is None:  # the query already leaves these out
            continue
        latest.setdefault(run.model or "default", (run, run.score))
        if len(latest) == 2:
            break
    row["models"] = [{"model": m, "run_id": r.id, "score": score, "at": r.started_at}
                     for m, (r, score) in latest.items()]
    if len(latest) < 2:
        row["verdict"] = Discrimination.NO_TWO_MODEL_RUNS if suite.uses_model else Discrimination.NO_MODEL
        return row
    a, b = (score for _, score in latest.values())
    row["spread"] = round(abs(a - b), 4)
    row["verdict"] = Discrimination.DISCRIMINATES if row["spread"] > suite.tolerance else Discrimination.NO_SPREAD
    return row


# -- reports ----------------------------------------------------------------------------------------------------------


def check_request(feature: str | None, days: float, distance: float) -> dict[str, list]:
    """The features to report on, or a DecayError that says what is wrong."""
    features = decay_features()
    if feature is not None and feature not in features:
        raise DecayError(f"unknown feature {feature!r}; features with eval suites: {', '.join(sorted(features))}")
    for name, value in (("days", days), ("distance", distance)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise DecayError(f"{name} must be a number, not {value!r}")
    if not 0 < days <= MAX_DAYS:
        raise DecayError(f"days must be more than 0 and at most {MAX_DAYS:g}, not {days:g}")
    if not 0 <= distance <= 2:
        raise DecayError(f"distance is a cosine distance from 0 to 2, not {distance:g}")
    return {feature: features[feature]} if feature else features


def decay_report(feature: str, days: float = DEFAULT_DAYS, distance: float = DEFAULT_DISTANCE, *,
                 cap: int = PRODUCTION_CAP, store: bool = True) -> dict:
    """One feature's decay report, stored in `decay_report` (returned with its id)."""
    suites = check_request(feature, days, distance)[feature]
    return _report(feature, suites, float(days), float(distance), cap, store)


def decay_reports(feature: str | None = None, days: float = DEFAULT_DAYS, distance: float = DEFAULT_DISTANCE, *,
                  cap: int = PRODUCTION_CAP) -> list[dict]:
    """A stored report per feature (every feature with a suite unless one is named); all inputs checked first."""
    features = check_request(feature, days, distance)
    return [_report(name, suites, float(days), float(distance), cap, True) for name, suites in sorted(features.items())]


def _report(feature: str, suites: list, days: float, distance: float, cap: int, store: bool) -> dict:
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        timings[name] = round((time.perf_counter() - started) * 1000 - sum(timings.values()), 1)

    evals = sorted(set(eval_inputs(suites)))
    production, in_window = production_inputs(feature, days, cap)
    lap("read_ms")
    groups: dict[str, list[dict]] = {}
    for row in production:
        groups.setdefault(row["text"], []).append(row)
    distinct = list(groups)
    vecs, encoded = vectors(evals + distinct)
    lap("embed_ms")
    eval_vecs, prod_vecs = vecs[:len(evals)], vecs[len(evals):]
    # One BLAS thread: these products are small, and OpenBLAS's second thread spin-waits on a busy 2-core machine
    # (clustering 800 inputs: 0.1 s with one thread, 1 s with two, measured under load).
    with threadpool_limits(limits=1, user_api="blas"):
        near = nearest_distance(prod_vecs, eval_vecs)
    counts = np.array([len(groups[t]) for t in distinct], dtype=np.float64)
    uncovered = near > distance
    n_uncovered = int(counts[uncovered].sum()) if len(distinct) else 0
    clusters: list[Cluster] = []
    if uncovered.any():
        idx = np.flatnonzero(uncovered)
        with threadpool_limits(limits=1, user_api="blas"):
            labels, to_centre = cluster(prod_vecs[idx], counts[idx], radius=distance / 2)
        for label in np.unique(labels):
            members = idx[labels == label]
            order = members[np.argsort(to_centre[labels == label])]  # closest to the centre first
            ids = [r["request_id"] for t in (distinct[i] for i in order) for r in groups[t]]
            clusters.append({
                "size": len(ids), "share": round(len(ids) / len(production), 4),
                "examples": [distinct[i] for i in order[:EXAMPLES_PER_CLUSTER]],
                "nearest_eval_distance": round(float(near[members].mean()), 3),
                "request_ids": ids, "sent": [],
            })
        clusters.sort(key=lambda c: -c["size"])
        for number, c in enumerate(clusters):
            c["cluster"] = number
    lap("cluster_ms")
    spreads = [suite_spread(s) for s in suites]
    weighted = np.repeat(near, counts.astype(int)) if len(distinct) else np.zeros(0)
    report = {
        "feature": feature, "days": days, "distance": distance,
        "suites": [s.name for s in suites], "eval_inputs": len(evals),
        "production": {"in_window": in_window, "sampled": len(production), "cap": cap,
                       "capped": in_window > len(production), "distinct": len(distinct)},
        "uncovered": n_uncovered,
        "uncovered_share": round(n_uncovered / len(production), 4) if production else None,
        "nearest_distance": {f"p{p}": round(float(np.percentile(weighted, p)), 3) for p in (10, 50, 90)}
        if len(weighted) else {},
        "clusters": clusters, "discrimination": spreads, "encoded": encoded,
    }
    lap("spread_ms")
    report["timings"] = timings | {"total_ms": round((time.perf_counter() - started) * 1000, 1)}
    if store:
        stored = DecayReport(feature=feature, days=days, distance=distance, created_at=time.time(),
                             report=json.dumps(report, default=str))
        with db.session() as s:
            s.add(stored)
            s.commit()
            s.refresh(stored)
            report |= {"id": stored.id, "created_at": stored.created_at}
    return report


def _row(r: DecayReport) -> dict:
    return json.loads(r.report or "{}") | {"id": r.id, "created_at": r.created_at}


def get_decay_report(report_id: int) -> dict | None:
    with db.session() as s:
        r = s.get(DecayReport, report_id)
        return _row(r) if r else None


def latest_decay_reports() -> list[dict]:
    """The newest stored report of each feature, by feature."""
    with db.session() as s:
        newest = s.exec(select(DecayReport.feature, DecayReport.id)
                        .order_by(col(DecayReport.created_at).desc(), col(DecayReport.id).desc()).limit(2000)).all()
        ids, seen = [], set()
        for feature, rid in newest:
            if feature not in seen:
                seen.add(feature)
                ids.append(rid)
        rows = s.exec(select(DecayReport).where(col(DecayReport.id).in_(ids))).all() if ids else []
    return sorted((_row(r) for r in rows), key=lambda r: r["feature"])


def send_cluster_to_review(report_id: int, cluster: int, n: int = 5, *, seed: int | None = None) -> list[str]:
    """Put a random sample of n not-yet-sent calls of one uncovered cluster in the review queue; returns the request
    ids added. The report remembers what it sent, so a second click sends others."""
    from core.annotation import queue_for_review

    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SEND:
        raise DecayError(f"send 1 to {MAX_SEND} calls at a time, not {n!r}")
    with db.session() as s:
        row = s.get(DecayReport, report_id, with_for_update=True)
        if row is None:
            raise DecayError(f"no decay report {report_id}")
        report = json.loads(row.report or "{}")
        clusters = report.get("clusters", [])
        if not isinstance(cluster, int) or not 0 <= cluster < len(clusters):
            raise DecayError(f"report {report_id} has {len(clusters)} uncovered cluster(s); no cluster {cluster!r}")
        c = clusters[cluster]
        left = [rid for rid in c["request_ids"] if rid not in set(c["sent"])]
        if not left:
            raise DecayError(f"every call of cluster {cluster} was already sent to the review queue")
        sample = random.Random(seed).sample(left, min(n, len(left)))
        added = queue_for_review(sample, session=s)
        c["sent"] = c["sent"] + sample
        row.report = json.dumps(report, default=str)
        s.add(row)
        s.commit()
    return added


def sent_by_decay(request_id: str) -> int | None:
    """The decay report that sent this call to the review queue, if one did (its eval case then has source decay)."""
    if not re.fullmatch(r"[0-9A-Za-z_-]{1,40}", request_id or ""):
        return None
    with db.session() as s:
        rows = s.exec(select(DecayReport.id, DecayReport.report).where(col(DecayReport.report).like(f'%"{request_id}"%'))
                      .order_by(col(DecayReport.id).desc()).limit(20)).all()
    for report_id, payload in rows:
        if any(request_id in c.get("sent", []) for c in json.loads(payload or "{}").get("clusters", [])):
            return report_id
    return None
