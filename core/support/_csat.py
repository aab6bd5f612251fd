"""CSAT: averages, counts and escalation rates by intent × handled by × model; drill-down and CSV rows."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func
from sqlmodel import select

from core import db
from core.tables import SupportConversation, SupportCsat, SupportMessage


@dataclass(frozen=True)
class Segment:
    intent: str
    handled_by: str
    model: str
    conversations: int
    rated: int
    avg_csat: float | None
    escalation_rate: float


@dataclass(frozen=True)
class Overview:
    conversations: int
    rated: int
    avg_csat: float | None
    escalation_rate: float


def _filters(stmt, since: float | None, intents, handled_by, models):
    if since is not None:
        stmt = stmt.where(SupportConversation.created_at >= since)
    if intents:
        stmt = stmt.where(func.coalesce(SupportConversation.intent, "UNKNOWN").in_(list(intents)))
    if handled_by:
        stmt = stmt.where(SupportConversation.handled_by.in_(list(handled_by)))
    if models:
        stmt = stmt.where(SupportConversation.model.in_(list(models)))
    return stmt


def segments(*, since: float | None = None, intents=None, handled_by=None, models=None) -> list[Segment]:
    """One row per intent × handled by × model, worst first: lowest average CSAT, then highest escalation rate."""
    intent = func.coalesce(SupportConversation.intent, "UNKNOWN")
    escalated = func.sum(case((SupportConversation.escalated_at.is_not(None), 1), else_=0))
    stmt = (select(intent, SupportConversation.handled_by, SupportConversation.model,
                   func.count(SupportConversation.id), func.count(SupportCsat.score), func.avg(SupportCsat.score),
                   escalated)
            .join(SupportCsat, SupportCsat.conversation_id == SupportConversation.id, isouter=True)
            .group_by(intent, SupportConversation.handled_by, SupportConversation.model))
    with db.session() as s:
        rows = s.exec(_filters(stmt, since, intents, handled_by, models)).all()
    out = [Segment(intent=r[0], handled_by=r[1], model=r[2], conversations=int(r[3]), rated=int(r[4]),
                   avg_csat=float(r[5]) if r[5] is not None else None,
                   escalation_rate=float(r[6] or 0) / int(r[3]) if r[3] else 0.0) for r in rows]
    out.sort(key=lambda g: (g.avg_csat is None, g.avg_csat if g.avg_csat is not None else 0, -g.escalation_rate))
    return out


def overview(*, since: float | None = None, intents=None, handled_by=None, models=None) -> Overview:
    escalated = func.sum(case((SupportConversation.escalated_at.is_not(None), 1), else_=0))
    stmt = (select(func.count(SupportConversation.id), func.count(SupportCsat.score), func.avg(SupportCsat.score),
                   escalated)
            .join(SupportCsat, SupportCsat.conversation_id == SupportConversation.id, isouter=True))
    with db.session() as s:
        n, rated, avg, esc = s.exec(_filters(stmt, since, intents, handled_by, models)).one()
    return Overview(int(n), int(rated), float(avg) if avg is not None else None, float(esc or 0) / n if n else 0.0)


def filter_options() -> dict[str, list[str]]:
    with db.session() as s:
        intents = s.exec(select(func.coalesce(SupportConversation.intent, "UNKNOWN")).distinct()).all()
        handled = s.exec(select(SupportConversation.handled_by).distinct()).all()
        models = s.exec(select(SupportConversation.model).distinct()).all()
    return {"intents": sorted(intents), "handled_by": sorted(handled), "models": sorted(models)}


def conversation_rows(*, since: float | None = None, max_score: int | None = None, intents=None, handled_by=None,
                      models=None, escalated_only: bool = False, limit: int = 5000) -> list[dict]:
    """One row per conversation (with its CSAT when rated): the drill-down table and the CSV export."""
    first_message = (select(SupportMessage.text).where(SupportMessage.conversation_id == SupportConversation.id,
                                                       SupportMessage.role == "customer")
                     .order_by(SupportMessage.id).limit(1).scalar_subquery())
    stmt = (select(SupportConversation, SupportCsat.score, SupportCsat.comment, first_message)
            .join(SupportCsat, SupportCsat.conversation_id == SupportConversation.id, isouter=True))
    stmt = _filters(stmt, since, intents, handled_by, models)
    if max_score is not None:
        stmt = stmt.where(SupportCsat.score <= max_score)
    if escalated_only:
        stmt = stmt.where(SupportConversation.escalated_at.is_not(None))
    with db.session() as s:
        rows = s.exec(stmt.order_by(SupportConversation.id.desc()).limit(limit)).all()
    return [{"conversation": c.id, "customer": c.customer_sub, "intent": c.intent or "UNKNOWN",
             "handled_by": c.handled_by, "model": c.model, "status": c.status, "csat": score, "comment": comment,
             "escalated": c.escalated_at is not None, "priority": c.priority, "agent": c.assigned_to,
             "bot_confidence": round(c.bot_confidence, 3) if c.bot_confidence is not None else None,
             "created_at": c.created_at, "resolved_at": c.resolved_at, "first_message": (text or "")[:500]}
            for c, score, comment, text in rows]
