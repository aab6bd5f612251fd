"""Workspace credits: a free plan has 20 AI responses per calendar month (UTC), a paid plan is unlimited.

A credit is reserved before the LLM call by one conditional UPDATE on the workspace's row for the month
(`used = used + 1 WHERE used < limit`), which both SQLite and PostgreSQL apply atomically, so two members
racing for the last credit never both get it. The reservation records who used it; it is settled when the
call succeeds and given back when it fails or is cancelled. A new month is a new row, so usage resets itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import cast

from sqlalchemy import bindparam, case
from sqlmodel import col, func, select, update

from core import db
from core.auth import Principal
from core.tables import Workspace, WorkspaceCredit, WorkspaceMember, WorkspaceUsage, table_of
from core.workspace._access import require_member
from core.workspace._errors import CreditsExhausted, WorkspaceError
from core.workspace._sql import insert_ignore, now as wall_now

PLAN_LIMITS: dict[str, int | None] = {"free": 20, "paid": None}  # AI responses per calendar month; None = unlimited
FREE_MONTHLY_CREDITS = PLAN_LIMITS["free"]

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def month_key(moment: datetime) -> str:
    """The usage bucket for a moment: its calendar month in UTC, "YYYY-MM"."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m")


def resets_on(month: str) -> date:
    """The first day of the month after `month` ("YYYY-MM"): when that month's credits come back."""
    year, number = (int(x) for x in month.split("-"))
    return date(year + 1, 1, 1) if number == 12 else date(year, number + 1, 1)


@dataclass(frozen=True)
class CreditStatus:
    workspace_id: str
    plan: str
    month: str
    limit: int | None  # None: unlimited (paid)
    used: int
    resets_on: date

    @property
    def left(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)

    @property
    def exhausted(self) -> bool:
        return self.limit is not None and self.used >= self.limit


@dataclass
class Reservation:
    """One reserved credit. `credits_left` is what remains this month after it (None when unlimited)."""

    id: int
    workspace_id: str
    month: str
    user_sub: str
    task: str
    plan: str
    credits_left: int | None
    status: str = "reserved"


@dataclass(frozen=True)
class MemberUsage:
    user_sub: str
    role: str | None  # None: no longer a member
    spent: int  # responses delivered this month
    in_flight: int  # reserved, call still running


def _plan(workspace_id: str) -> str:
    with db.session() as s:
        ws = s.get(Workspace, workspace_id)
    if ws is None:
        raise WorkspaceError(f"no workspace {workspace_id!r}")
    if ws.plan not in PLAN_LIMITS:
        raise WorkspaceError(f"workspace {workspace_id!r} has an unknown plan {ws.plan!r}")
    return ws.plan


def credit_status(workspace_id: str, *, clock: Clock = utc_now) -> CreditStatus:
    """The workspace's plan, limit and usage for the current month (reading only; reserves nothing)."""
    plan = _plan(workspace_id)
    month = month_key(clock())
    with db.session() as s:
        row = s.get(WorkspaceUsage, (workspace_id, month))
    return CreditStatus(workspace_id, plan, month, PLAN_LIMITS[plan], row.used if row else 0, resets_on(month))


_UNLIMITED = 2**31 - 1
_usage, _credit, _workspace = table_of(WorkspaceUsage), table_of(WorkspaceCredit), table_of(Workspace)
# Built once: reservations are hot, and SQLAlchemy Core with bound parameters skips per-call ORM work.
_LIMIT = select(case(*[(_workspace.c.plan == plan, _UNLIMITED if limit is None else limit)
                       for plan, limit in PLAN_LIMITS.items()], else_=0)  # an unknown plan gets no credits
                ).where(_workspace.c.id == bindparam("b_ws")).scalar_subquery()
_TAKE = (_usage.update()
         .where(_usage.c.workspace_id == bindparam("b_ws"), _usage.c.month == bindparam("b_month"),
                _usage.c.used < _LIMIT)
         .values(used=_usage.c.used + 1)
         .returning(_usage.c.used))
_PLAN = select(_workspace.c.plan).where(_workspace.c.id == bindparam("b_ws"))
_RECORD = _credit.insert().returning(_credit.c.id)


def reserve_credit(workspace_id: str, user_sub: str, task: str, *, clock: Clock = utc_now) -> Reservation:
    """Take one credit for `user_sub` now, or raise CreditsExhausted (with the reset date) and take nothing.

    One transaction that starts by writing: `UPDATE … SET used = used + 1 WHERE used < <the plan's limit>`
    (the plan is read inside the statement, so a plan change cannot race it), then the reservation row.
    """
    month = month_key(clock())
    key = {"b_ws": workspace_id, "b_month": month}
    with db.session() as s:
        conn = s.connection()
        used = conn.execute(_TAKE, key).scalar()
        if used is None:  # first use this month (no row yet), no credit left, or no such workspace
            if conn.execute(_PLAN, key).scalar() is None:
                raise WorkspaceError(f"no workspace {workspace_id!r}")
            insert_ignore(s, _usage, dict(workspace_id=workspace_id, month=month, used=0))
            used = conn.execute(_TAKE, key).scalar()
        plan = conn.execute(_PLAN, key).scalar()
        if plan not in PLAN_LIMITS:
            raise WorkspaceError(f"workspace {workspace_id!r} has an unknown plan {plan!r}")
        limit = PLAN_LIMITS[plan]
        if used is None:
            cap = _UNLIMITED if limit is None else limit  # what _LIMIT held the UPDATE to
            raise CreditsExhausted(workspace_id=workspace_id, plan=plan, limit=cap, used=cap, month=month,
                                   resets_on=resets_on(month))
        credit_id = conn.execute(_RECORD, dict(workspace_id=workspace_id, month=month, user_sub=user_sub,
                                               task=task[:64], status="reserved", created_at=wall_now())).scalar_one()
    return Reservation(credit_id, workspace_id, month, user_sub, task, plan,
                       None if limit is None else limit - used)


def settle_credit(reservation: Reservation, request_id: str | None = None) -> bool:
    """The call delivered: the credit stays spent. False if it was already settled or given back."""
    with db.session() as s:
        done = s.exec(update(WorkspaceCredit)
                      .where(col(WorkspaceCredit.id) == reservation.id, col(WorkspaceCredit.status) == "reserved")
                      .values(status="spent", request_id=request_id, settled_at=wall_now())).rowcount
    if done:
        reservation.status = "spent"
    return bool(done)


def refund_credit(reservation: Reservation, request_id: str | None = None) -> bool:
    """Give the credit back (the call failed or was cancelled). Idempotent: a second call changes nothing."""
    with db.session() as s:
        done = s.exec(update(WorkspaceCredit)
                      .where(col(WorkspaceCredit.id) == reservation.id, col(WorkspaceCredit.status) == "reserved")
                      .values(status="refunded", request_id=request_id, settled_at=wall_now())).rowcount
        if done:
            s.exec(update(WorkspaceUsage)
                   .where(col(WorkspaceUsage.workspace_id) == reservation.workspace_id,
                          col(WorkspaceUsage.month) == reservation.month, col(WorkspaceUsage.used) > 0)
                   .values(used=WorkspaceUsage.used - 1))
    if done:
        reservation.status = "refunded"
        if reservation.credits_left is not None:
            reservation.credits_left += 1
    return bool(done)


def release_stale_reservations(older_than_s: float = 900.0) -> int:
    """Give back credits still 'reserved' long after any call could have ended (a crashed process)."""
    cutoff = wall_now() - older_than_s
    with db.session() as s:
        stale = s.exec(select(WorkspaceCredit).where(WorkspaceCredit.status == "reserved",
                                                      WorkspaceCredit.created_at < cutoff)).all()
    released = 0
    for credit in stale:
        credit_id = cast(int, credit.id)  # a row read back from the table always has its primary key
        released += refund_credit(Reservation(credit_id, credit.workspace_id, credit.month, credit.user_sub,
                                              credit.task, "", None))
    return released


def usage_by_member(who: Principal | str, workspace_id: str, *, month: str | None = None,
                    clock: Clock = utc_now) -> list[MemberUsage]:
    """Admins only: AI responses per member for a month (default: this one), most used first."""
    require_member(who, workspace_id, admin=True)
    month = month or month_key(clock())
    with db.session() as s:
        rows = s.exec(
            select(WorkspaceCredit.user_sub, WorkspaceCredit.status, func.count())
            .where(WorkspaceCredit.workspace_id == workspace_id, WorkspaceCredit.month == month,
                   col(WorkspaceCredit.status).in_(("spent", "reserved")))
            .group_by(WorkspaceCredit.user_sub, WorkspaceCredit.status)
        ).all()
        roles = dict(s.exec(select(WorkspaceMember.user_sub, WorkspaceMember.role)
                            .where(WorkspaceMember.workspace_id == workspace_id)).all())
    counts: dict[str, list[int]] = {sub: [0, 0] for sub in roles}
    for sub, status, n in rows:
        counts.setdefault(sub, [0, 0])[0 if status == "spent" else 1] += n
    usage = [MemberUsage(sub, roles.get(sub), spent, in_flight) for sub, (spent, in_flight) in counts.items()]
    return sorted(usage, key=lambda u: (-(u.spent + u.in_flight), u.user_sub))
