"""The annotation queue: a sampled share of answered LLM calls (`KEEL_ANNOTATION_SAMPLE_SHARE`) that a person marks
good or bad, and one click from a marked call to an eval case. (Not PR review, which is core.review; the table keeps
its old name, `review_item`.)"""

from __future__ import annotations

import time
from enum import StrEnum

from sqlalchemy import func
from sqlmodel import col, select

from core import db
from core.errors import KeelError
from core.evals import CaseSource, add_eval_case
from core.llm._types import ANSWERED
from core.observe._synthetic import demo_id_bounds, is_demo
from core.tables import RequestLog, ReviewItem, table_of

VERDICTS = ("good", "bad")
MAX_NOTE_CHARS = 4000


class AnnotationError(KeelError, ValueError):
    """An annotation (a verdict on a sampled call) that cannot be taken; the message says why. Not PR review."""


class AnnotationSource(StrEnum):
    """Where a queued call came from: `demo` traffic (the demo seed, `keel demo traffic`) or real `live` calls."""

    DEMO = "demo"
    LIVE = "live"


def _filtered(stmt, verdict: str | None, features: tuple[str, ...], source: str | None):
    if verdict == "pending":
        stmt = stmt.where(col(ReviewItem.verdict).is_(None))
    elif verdict in VERDICTS:
        stmt = stmt.where(ReviewItem.verdict == verdict)
    elif verdict is not None:
        raise AnnotationError(f"unknown verdict filter {verdict!r}: use pending, good, bad or all")
    if features:
        stmt = stmt.where(col(ReviewItem.feature).in_(features))
    if source is not None:
        try:
            source = AnnotationSource(source)
        except ValueError:
            raise AnnotationError(f"unknown source filter {source!r}: use demo, live or all") from None
        low, high = demo_id_bounds()
        in_demo = (ReviewItem.request_id >= low) & (ReviewItem.request_id < high)
        stmt = stmt.where(in_demo if source is AnnotationSource.DEMO else ~in_demo)
    return stmt


def review_queue(*, verdict: str | None = "pending", features: tuple[str, ...] = (), limit: int = 50,
                 offset: int = 0, source: str | None = None) -> list[dict]:
    """Sampled calls, newest first, with the answered attempt's input and output. verdict: pending|good|bad|None (all);
    source: demo|live|None (all). Each item says whether it is demo data (`demo`)."""
    stmt = _filtered(select(ReviewItem), verdict, features, source)
    stmt = stmt.order_by(col(ReviewItem.sampled_at).desc(), ReviewItem.request_id).offset(max(0, offset)) \
        .limit(max(1, min(limit, 500)))
    with db.session() as session:
        items = session.exec(stmt).all()
        calls = _answered_attempts(session, [i.request_id for i in items])
    out = []
    for item in items:
        call = calls.get(item.request_id, {})
        out.append(item.model_dump() | {
            "task": call.get("task"), "tier": call.get("tier"), "customer": call.get("customer"),
            "input_text": call.get("input_text") or "", "output_text": call.get("output_text") or "",
            "latency_ms": call.get("latency_ms"), "cost_usd": call.get("cost_usd"), "status": call.get("status"),
            "log_id": call.get("id"), "demo": is_demo(item.request_id),
        })
    return out


def review_total(*, verdict: str | None = "pending", features: tuple[str, ...] = (), source: str | None = None) -> int:
    """How many items review_queue would page through with the same filters."""
    stmt = _filtered(select(func.count()).select_from(ReviewItem), verdict, features, source)
    with db.session() as session:
        return int(session.exec(stmt).one())


def _answered_attempts(session, request_ids: list[str]) -> dict[str, dict]:
    if not request_ids:
        return {}
    rows = session.exec(
        select(RequestLog).where(col(RequestLog.request_id).in_(request_ids), col(RequestLog.status).in_(ANSWERED))
    ).all()
    return {r.request_id: r.model_dump() for r in sorted(rows, key=lambda r: r.attempt)}


def queue_for_review(request_ids: list[str], *, session=None) -> list[str]:
    """Put answered calls in the review queue (as the log writer's sampling does), newest on top; a call already in
    the queue keeps its place and verdict. Returns the request ids added."""
    def run(s) -> list[str]:
        ids = list(dict.fromkeys(str(r) for r in request_ids))
        calls = _answered_attempts(s, ids)
        queued = set(s.exec(select(ReviewItem.request_id).where(col(ReviewItem.request_id).in_(ids))).all()) if ids else set()
        now = time.time()
        rows = [{"request_id": rid, "sampled_at": now, "feature": calls[rid]["feature"], "model": calls[rid]["model"],
                 "prompt_version": calls[rid]["prompt_version"]} for rid in ids if rid in calls and rid not in queued]
        db.insert_ignoring_duplicates(s, table_of(ReviewItem), rows)
        return [r["request_id"] for r in rows]

    if session is not None:
        return run(session)  # the caller commits
    with db.session() as s:
        added = run(s)
        s.commit()
        return added


def review_counts(features: tuple[str, ...] = ()) -> dict[str, int]:
    stmt = select(ReviewItem.verdict, func.count()).group_by(ReviewItem.verdict)
    if features:
        stmt = stmt.where(col(ReviewItem.feature).in_(features))
    with db.session() as session:
        counts = {verdict or "pending": n for verdict, n in session.exec(stmt).all()}
    return {"pending": counts.get("pending", 0), "good": counts.get("good", 0), "bad": counts.get("bad", 0)}


def mark_review(request_id: str, verdict: str, note: str = "", *, reviewer: str) -> dict:
    """Record a reviewer's verdict; marking again replaces the earlier verdict and note."""
    if verdict not in VERDICTS:
        raise AnnotationError(f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}")
    note = _clean_text(note or "", "note", MAX_NOTE_CHARS)
    with db.session() as session:
        item = session.get(ReviewItem, request_id)
        if item is None:
            raise AnnotationError(f"request {request_id!r} is not in the review queue")
        item.verdict, item.note, item.reviewer, item.reviewed_at = verdict, note, reviewer, time.time()
        session.add(item)
        session.commit()
        session.refresh(item)
        return item.model_dump()


def review_to_eval_case(request_id: str, suite: str, expected: dict, notes: str = "", *, created_by: str) -> int:
    """One click from a reviewed call to an eval case; a second click returns the case already made."""
    with db.session() as session:
        item = session.get(ReviewItem, request_id)
        if item is None:
            raise AnnotationError(f"request {request_id!r} is not in the review queue")
        if item.verdict is None:
            raise AnnotationError("mark the call good or bad before turning it into an eval case")
        if item.eval_case_id is not None:
            return item.eval_case_id
        call = _answered_attempts(session, [request_id]).get(request_id)
    if call is None or not (call.get("input_text") or "").strip():
        raise AnnotationError("this call's input was not kept (redacted log?), so it cannot become an eval case")
    from core.observe._decay import sent_by_decay

    source = CaseSource.DECAY if sent_by_decay(request_id) is not None else CaseSource.ANNOTATION  # decay: an uncovered cluster
    case_id = add_eval_case(suite, call["input_text"], expected, notes or (item.note or ""), source=source,
                            source_ref=request_id, created_by=created_by)
    with db.session() as session:
        item = session.get(ReviewItem, request_id)
        if item is not None:  # a demo clear may have emptied the queue meanwhile; the case stands on its own
            item.eval_case_id = case_id
            session.add(item)
            session.commit()
    return case_id


def _clean_text(value, what: str, limit: int) -> str:
    if isinstance(value, bytes):
        raise AnnotationError(f"{what} must be text, not bytes")
    value = str(value).replace("\x00", "")
    if len(value) > limit:
        raise AnnotationError(f"{what} is {len(value):,} characters; the limit is {limit:,}")
    return value
