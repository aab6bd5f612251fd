"""CSAT: averages, counts and escalation rates by intent × handled by × model; drill-down and CSV rows."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select as SQLSelect
from sqlalchemy import case, func
from sqlmodel import col, select
from sqlmodel.sql.expression import Select

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


_Q = TypeVar("_Q", bound=SQLSelect[*tuple[Any, ...]])  # any select over these tables; where() keeps its type


def _filters(stmt: _Q, since: float | None, intents: Collection[str] | None, handled_by: Collection[str] | None,
             models: Collection[str] | None) -> _Q:
    if since is not None:
        stmt = stmt.where(col(SupportConversation.created_at) >= since)
    if intents:
        stmt = stmt.where(func.coalesce(SupportConversation.intent, "UNKNOWN").in_(list(intents)))
    if handled_by:
        stmt = stmt.where(col(SupportConversation.handled_by).in_(list(handled_by)))
    if models:
        stmt = stmt.where(col(SupportConversation.model).in_(list(models)))
    return stmt


def segments(*, since: float | None = None, intents: Collection[str] | None = None,
             handled_by: Collection[str] | None = None, models: Collection[str] | None = None) -> list[Segment]:
    """One row per intent × handled by × model, worst first: lowest average CSAT, then highest escalation rate."""
    intent = func.coalesce(SupportConversation.intent, "UNKNOWN")
    escalated = func.sum(case((col(SupportConversation.escalated_at).is_not(None), 1), else_=0))
    # sqlmodel's select() is typed for at most 4 columns; for more it builds this same Select, typed per column Any.
    columns: Select[*tuple[Any, ...]] = Select(
        intent, col(SupportConversation.handled_by), col(SupportConversation.model),
        func.count(col(SupportConversation.id)), func.count(col(SupportCsat.score)), func.avg(SupportCsat.score),
        escalated)
    stmt = (columns
            .join(SupportCsat, col(SupportCsat.conversation_id) == SupportConversation.id, isouter=True)
            .group_by(intent, SupportConversation.handled_by, SupportConversation.model))
    with db.session() as s:
        rows = s.exec(_filters(stmt, since, intents, handled_by, models)).all()
    out = [Segment(intent=r[0], handled_by=r[1], model=r[2], conversations=int(r[3]), rated=int(r[4]),
                   avg_csat=float(r[5]) if r[5] is not None else None,
                   escalation_rate=float(r[6] or 0) / int(r[3]) if r[3] else 0.0) for r in rows]
    out.sort(key=lambda g: (g.avg_csat is None, g.avg_csat if g.avg_csat is not None else 0, -g.escalation_rate))
    return out


def overview(*, since: float | None = None, intents: Collection[str] | None = None,
             handled_by: Collection[str] | None = None, models: Collection[str] | None = None) -> Overview:
    escalated = func.sum(case((col(SupportConversation.escalated_at).is_not(None), 1), else_=0))
    stmt = (select(func.count(col(SupportConversation.id)), func.count(col(SupportCsat.score)), func.avg(SupportCsat.score),
                   escalated)
            .join(SupportCsat, col(SupportCsat.conversation_id) == SupportConversation.id, isouter=True))
    with db.session() as s:
        n, rated, avg, esc = s.exec(_filters(stmt, since, intents, handled_by, models)).one()
    return Overview(int(n), int(rated), float(avg) if avg is not None else None, float(esc or 0) / n if n else 0.0)


def filter_options() -> dict[str, list[str]]:
    with db.session() as s:
        intents = s.exec(select(func.coalesce(SupportConversation.intent, "UNKNOWN")).distinct()).all()
        handled = s.exec(select(SupportConversation.handled_by).distinct()).all()
        models = s.exec(select(SupportConversation.model).distinct()).all()
    return {"intents": sorted(intents), "handled_by": sorted(handled), "models": sorted(models)}


def conversation_rows(*, since: float | None = None, max_score: int | None = None,
                      intents: Collection[str] | None = None, handled_by: Collection[str] | None = None,
                      models: Collection[str] | None = None, escalated_only: bool = False, limit: int = 5000) -> list[dict]:
    """One row per conversation (with its CSAT when rated): the drill-down table and the CSV export."""
    first_message = (select(SupportMessage.text).where(col(SupportMessage.conversation_id) == SupportConversation.id,
                                                       col(SupportMessage.role) == "customer")
                     .order_by(col(SupportMessage.id)).limit(1).scalar_subquery())
    stmt = (select(SupportConversation, SupportCsat.score, SupportCsat.comment, first_message)
            .join(SupportCsat, col(SupportCsat.conversation_id) == SupportConversation.id, isouter=True))
    stmt = _filters(stmt, since, intents, handled_by, models)
    if max_score is not None:
        stmt = stmt.where(col(SupportCsat.score) <= max_score)
    if escalated_only:
        stmt = stmt.where(col(SupportConversation.escalated_at).is_not(None))
    with db.session() as s:
        rows = s.exec(stmt.order_by(col(SupportConversation.id).desc()).limit(limit)).all()
    return [{"conversation": c.id, "customer": c.customer_sub, "intent": c.intent or "UNKNOWN",
             "handled_by": c.handled_by, "model": c.model, "status": c.status, "csat": score, "comment": comment,
             "escalated": c.escalated_at is not None, "priority": c.priority, "agent": c.assigned_to,
             "bot_confidence": round(c.bot_confidence, 3) if c.bot_confidence is not None else None,
             "created_at": c.created_at, "resolved_at": c.resolved_at, "first_message": (text or "")[:500]}
            for c, score, comment, text in rows]
