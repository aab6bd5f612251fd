"""Monthly budgets per customer and per feature, enforced before a call leaves the gateway.

A call that a budget applies to first holds its worst-case cost as a `budget_hold` row, in a transaction that
locks the budget row and checks this month's logged cost plus every live hold in one statement; the hold is
deleted in the same transaction that writes the call's cost row (see `_log`), so at no moment is a call counted
neither as a hold nor as spend, in this process or any other replica. Budget definitions are cached briefly, so
a call with no budget costs a dict lookup.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import StrEnum

from sqlalchemy import delete, insert, select as sql_select, text, update
from sqlalchemy.engine import Connection
from sqlmodel import select

from core import db
from core.errors import KeelError
from core.tables import Budget, BudgetHold, table_of

_logger = logging.getLogger(__name__)


class BudgetScope(StrEnum):
    CUSTOMER = "customer"
    FEATURE = "feature"


SCOPES = tuple(BudgetScope)
_SPEND_SOURCE = {BudgetScope.CUSTOMER: ("log_rollup_customer", "customer"),
                 BudgetScope.FEATURE: ("log_rollup_dims", "feature")}


@dataclass(frozen=True)
class BudgetStatus:
    scope: str
    key: str
    soft_usd: float | None
    hard_usd: float | None
    spent_usd: float
    month: str

    @property
    def over_soft(self) -> bool:
        return self.soft_usd is not None and self.spent_usd >= self.soft_usd

    @property
    def over_hard(self) -> bool:
        return self.hard_usd is not None and self.spent_usd >= self.hard_usd


class BudgetExceeded(KeelError):
    def __init__(self, status: BudgetStatus, estimate: float):
        self.status = status
        super().__init__(
            f"the {status.scope} {status.key!r} has reached its hard budget of ${status.hard_usd:,.2f} for "
            f"{status.month} (spent ${status.spent_usd:,.4f}, this call could cost up to ${estimate:,.4f}); "
            "the call was not made. An admin can raise the budget on the Prices & API keys page."
        )


def month_start(now: float | None = None) -> tuple[float, str]:
    moment = datetime.fromtimestamp(now or time.time(), tz=timezone.utc)
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start.timestamp(), start.strftime("%B %Y")


def month_spend(scope: str, key: str, now: float | None = None) -> float:
    start, _ = month_start(now)
    table, column = _SPEND_SOURCE[BudgetScope(scope)]
    with db.get_engine().connect() as conn:
        value = conn.execute(text(f"SELECT SUM(cost_usd) FROM {table} WHERE {column} = :key AND hour >= :h0"),
                             {"key": key, "h0": int(start // 3600)}).scalar()
    return float(value or 0.0)


def _committed_and_held(conn: Connection, scope: BudgetScope, key: str, now: float) -> float:
    """This month's logged cost plus live holds, in ONE statement: one snapshot, so a cost row committed between
    two reads (hold gone, spend not yet seen) can never make a call vanish from both."""
    start, _ = month_start(now)
    table, column = _SPEND_SOURCE[scope]
    value = conn.execute(text(
        f"SELECT COALESCE((SELECT SUM(cost_usd) FROM {table} WHERE {column} = :key AND hour >= :h0), 0)"
        " + COALESCE((SELECT SUM(amount_usd) FROM budget_hold"
        " WHERE scope = :scope AND key = :key AND expires_at > :now), 0)"),
        {"key": key, "h0": int(start // 3600), "scope": str(scope), "now": now}).scalar()
    return float(value or 0.0)


def release_holds(conn: Connection, hold_ids: list[str]) -> None:
    """Delete holds inside the caller's transaction (the one that writes the calls' cost rows)."""
    if hold_ids:
        hold = table_of(BudgetHold)
        conn.execute(delete(hold).where(hold.c.id.in_(hold_ids)))


class BudgetBook:
    def __init__(self, ttl_s: float = 5.0, hold_ttl_s: float = 900.0):
        self._ttl_s = ttl_s
        self.hold_ttl_s = hold_ttl_s
        self._budgets: dict[tuple[str, str], tuple[float | None, float | None]] = {}
        self._loaded_at = -1e9
        self._swept_at = 0.0
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        """Forget the cached budget definitions, so the next call reads them (after `save_budgets` elsewhere)."""
        self._loaded_at = -1e9

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._loaded_at < self._ttl_s:
            return
        try:
            with db.session() as s:
                rows = s.exec(select(Budget)).all()
            self._budgets = {(b.scope, b.key): (b.soft_usd, b.hard_usd) for b in rows}
        except Exception:  # no table yet (a database behind on migrations): enforce nothing rather than fail calls
            _logger.exception("cannot read budgets; none are enforced until they can be read")
            self._budgets = {}
        self._loaded_at = now

    def applies(self, customer: str | None, feature: str) -> list[tuple[str, str]]:
        with self._lock:
            self._refresh()
            return [k for k in ((BudgetScope.CUSTOMER.value, customer), (BudgetScope.FEATURE.value, feature))
                    if k[1] and k in self._budgets]

    def reserve(self, customer: str | None, feature: str, estimate, request_id: str = "") -> list[str]:
        """Hold the call's worst-case cost (`estimate()`, priced only when a budget applies) against every budget
        that applies; returns the hold ids to release with the cost row, or raises BudgetExceeded holding nothing."""
        keys = self.applies(customer, feature)
        if not keys:
            return []
        amount = float(estimate())
        now = time.time()
        _, month = month_start(now)
        budget, hold = table_of(Budget), table_of(BudgetHold)
        holds: list[dict[str, object]] = []
        hold_ids: list[str] = []
        with db.get_engine().begin() as conn:
            for scope, key in sorted(keys):
                # Lock the budget row first (a write lock on SQLite, a row lock on PostgreSQL): reservations for one
                # budget are serialised across threads and processes, so two cannot both fit under the limit.
                locked = conn.execute(update(budget).where(budget.c.scope == scope, budget.c.key == key)
                                      .values(updated_at=budget.c.updated_at)).rowcount
                if not locked:
                    continue  # deleted since the cache was read
                soft, hard = conn.execute(sql_select(budget.c.soft_usd, budget.c.hard_usd)
                                          .where(budget.c.scope == scope, budget.c.key == key)).one()
                if hard is not None:
                    spent = _committed_and_held(conn, BudgetScope(scope), key, now)
                    if spent + amount > hard:
                        raise BudgetExceeded(BudgetStatus(scope, key, soft, hard, spent, month), amount)
                hold_ids.append(uuid.uuid4().hex)
                holds.append(dict(id=hold_ids[-1], scope=scope, key=key, amount_usd=amount,
                                  request_id=(request_id or "")[:40], created_at=now,
                                  expires_at=now + self.hold_ttl_s))
            if holds:
                conn.execute(insert(hold), holds)
            if now - self._swept_at > 60:
                self._swept_at = now
                conn.execute(delete(hold).where(hold.c.expires_at < now))
        return hold_ids


def live_holds(scope: str, key: str) -> float:
    """What calls in flight (every process) hold against one budget right now."""
    with db.get_engine().connect() as conn:
        value = conn.execute(text("SELECT SUM(amount_usd) FROM budget_hold WHERE scope = :scope AND key = :key"
                                  " AND expires_at > :now"), {"scope": scope, "key": key, "now": time.time()}).scalar()
    return float(value or 0.0)


def list_budgets() -> list[BudgetStatus]:
    """Every budget with this month's spend, for the Admin page and the dashboard's alerts."""
    _, month = month_start()
    with db.session() as s:
        rows = s.exec(select(Budget).order_by(Budget.scope, Budget.key)).all()
    return [BudgetStatus(b.scope, b.key, b.soft_usd, b.hard_usd, month_spend(b.scope, b.key), month) for b in rows]


def save_budgets(rows: list[dict]) -> None:
    """Replace the budget table after validating every row; nothing is written if one is bad."""
    clean: dict[tuple[str, str], tuple[float | None, float | None]] = {}
    for i, row in enumerate(rows):
        scope, key = (value.strip() if isinstance(value, str) else "" for value in (row.get("scope"), row.get("key")))
        if scope not in SCOPES:
            raise ValueError(f"row {i + 1}: scope must be one of {', '.join(SCOPES)}")
        if not key or len(key) > 128 or "\x00" in key:
            raise ValueError(f"row {i + 1}: a {scope} name of 1-128 characters is required")
        limits: list[float | None] = []
        for name in ("soft_usd", "hard_usd"):
            value = row.get(name)
            if value is None or value == "" or (isinstance(value, float) and value != value):
                limits.append(None)
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"row {i + 1} ({key}): {name} must be a number") from None
            if not 0 <= number <= 1e9:
                raise ValueError(f"row {i + 1} ({key}): {name} must be between 0 and 1,000,000,000")
            limits.append(number)
        soft, hard = limits
        if soft is None and hard is None:
            raise ValueError(f"row {i + 1} ({key}): give a soft or a hard budget")
        if soft is not None and hard is not None and soft > hard:
            raise ValueError(f"row {i + 1} ({key}): the soft budget must not exceed the hard budget")
        if (scope, key) in clean:
            raise ValueError(f"{scope} {key!r} appears twice")
        clean[(scope, key)] = (soft, hard)
    with db.session() as s:
        for budget in s.exec(select(Budget)).all():
            if (budget.scope, budget.key) not in clean:
                s.delete(budget)
        for (scope, key), (soft, hard) in clean.items():
            s.merge(Budget(scope=scope, key=key, soft_usd=soft, hard_usd=hard, updated_at=time.time()))
