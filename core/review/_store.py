"""Reviews in SQL: the cache (one row per diff hash + repository + model configuration), its comments, and the
accept/dismiss decisions remembered per repository."""

from __future__ import annotations

import json
import time

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select

from core import db
from core.review._comments import CATEGORIES, Comment, Severity
from core.review._errors import ReviewError
from core.tables import ReviewComment, ReviewDecision, ReviewRun

DECISIONS = ("dismissed", "accepted")


def _inserted_id(run: ReviewRun) -> int:
    """The key the database gave the run on flush: the comments point at it, so a run without one cannot be saved."""
    if run.id is None:
        raise ReviewError("the review run got no id from the database on insert")
    return run.id


def load_review(cache_key: str) -> tuple[dict, list[Comment]] | None:
    with db.session() as s:
        run = s.exec(select(ReviewRun).where(ReviewRun.cache_key == cache_key)).first()
        if run is None:
            return None
        rows = s.exec(select(ReviewComment).where(ReviewComment.review_id == run.id)
                      .order_by(col(ReviewComment.position))).all()
        payload = json.loads(run.result_json)
        payload.update(id=run.id, created_at=run.created_at, verdict=run.verdict, tokens_in=run.tokens_in,
                       tokens_out=run.tokens_out, cost_usd=run.cost_usd, wall_ms=run.wall_ms)
        comments = [Comment(path=r.path, line=r.line, severity=Severity(r.severity), category=r.category, message=r.message,
                            suggestion=r.suggestion, explanation=r.explanation, source=r.source,
                            confidence=r.confidence, specificity=r.specificity, rule=r.rule,
                            fingerprint=r.fingerprint, code=r.code, also_at=json.loads(r.also_at or "[]"), id=r.id)
                    for r in rows]
        return payload, comments


def save_review(*, cache_key: str, diff_hash: str, repo_key: str, model_key: str, engine_version: str, user,
                verdict: str, files: int, added_lines: int, tokens_in: int, tokens_out: int, cost_usd: float,
                wall_ms: float, payload: dict, comments: list[Comment]) -> int:
    """Store a finished review; if the same review was stored meanwhile (two identical runs), keep that one."""
    try:
        with db.session() as s:
            s.exec(delete(ReviewComment).where(col(ReviewComment.review_id).in_(  # a stale row from an older engine
                select(ReviewRun.id).where(ReviewRun.cache_key == cache_key))))
            s.exec(delete(ReviewRun).where(col(ReviewRun.cache_key) == cache_key))
            run = ReviewRun(cache_key=cache_key, diff_hash=diff_hash, repo_key=repo_key[:500],
                            model_key=model_key[:300],
                            engine_version=engine_version, created_at=time.time(),
                            user=(user or None) and str(user)[:255], verdict=verdict, files=files,
                            added_lines=added_lines, tokens_in=tokens_in, tokens_out=tokens_out, cost_usd=cost_usd,
                            wall_ms=wall_ms, result_json=json.dumps(payload, default=str))
            s.add(run)
            s.flush()
            run_id = _inserted_id(run)
            for position, c in enumerate(comments):
                row = ReviewComment(review_id=run_id, position=position, path=c.path[:1000], line=c.line,
                                    severity=str(c.severity), category=c.category, message=c.message,
                                    suggestion=c.suggestion, explanation=c.explanation, source=c.source,
                                    confidence=c.confidence, specificity=c.specificity, rule=c.rule[:300],
                                    fingerprint=c.fingerprint, code=c.code, also_at=json.dumps(c.also_at))
                s.add(row)
                s.flush()
                c.id = row.id
            s.commit()
            return run_id
    except IntegrityError:
        stored = load_review(cache_key)
        return stored[0]["id"] if stored else 0


def decide(repo_key: str, comment: Comment, decision: str, user: str | None = None) -> None:
    """Remember accept or dismiss for this suggestion in this repository (the latest decision wins)."""
    if decision not in DECISIONS:
        raise ReviewError(f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
    if not comment.fingerprint or comment.category not in CATEGORIES:
        raise ReviewError("that comment has no fingerprint or category; re-run the review")
    with db.session() as s:
        row = s.exec(select(ReviewDecision).where(ReviewDecision.repo_key == repo_key,
                                                  ReviewDecision.fingerprint == comment.fingerprint)).first()
        if row is None:
            row = ReviewDecision(repo_key=repo_key[:500], fingerprint=comment.fingerprint, decision=decision,
                                 path=comment.path[:1000], category=comment.category, message=comment.message,
                                 user=user, created_at=time.time())
        else:
            row.decision, row.user, row.created_at = decision, user, time.time()
        s.add(row)
        try:
            s.commit()
        except IntegrityError:  # a concurrent first decision on the same suggestion: apply ours on top
            s.rollback()
            row = s.exec(select(ReviewDecision).where(ReviewDecision.repo_key == repo_key,
                                                      ReviewDecision.fingerprint == comment.fingerprint)).one()
            row.decision, row.user, row.created_at = decision, user, time.time()
            s.add(row)
            s.commit()


def undo_decision(repo_key: str, fingerprint: str) -> bool:
    with db.session() as s:
        result = s.exec(delete(ReviewDecision).where(col(ReviewDecision.repo_key) == repo_key,
                                                     col(ReviewDecision.fingerprint) == fingerprint))
        s.commit()
        return bool(result.rowcount)


def decisions(repo_key: str) -> dict[str, str]:
    """fingerprint → decision for this repository."""
    with db.session() as s:
        rows = s.exec(select(ReviewDecision.fingerprint, ReviewDecision.decision)
                      .where(ReviewDecision.repo_key == repo_key)).all()
        return {f: d for f, d in rows}


def recent_reviews(limit: int = 20) -> list[dict]:
    with db.session() as s:
        rows = s.exec(select(ReviewRun).order_by(col(ReviewRun.created_at).desc()).limit(max(1, min(limit, 200)))).all()
        return [{"id": r.id, "created_at": r.created_at, "repo": r.repo_key, "verdict": r.verdict, "files": r.files,
                 "added_lines": r.added_lines, "model": r.model_key, "wall_ms": r.wall_ms, "user": r.user,
                 "diff_hash": r.diff_hash} for r in rows]
