"""Monthly budgets per customer and per feature, enforced before a call leaves the gateway.

Spend is this month's logged cost (from the hourly rollups) plus what calls in flight in this process may still
cost (reserved at their worst case, released when they are logged), so concurrent calls cannot all slip under a
hard limit at once. Budgets and spend are cached briefly, so a call with no budget costs a dict lookup.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import text
from sqlmodel import select

from core import db
from core.tables import Budget

SCOPES = ("customer", "feature")


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


class BudgetExceeded(Exception):
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
    table, column = ("log_rollup_customer", "customer") if scope == "customer" else ("log_rollup_dims", "feature")
    with db.get_engine().connect() as conn:
        value = conn.execute(text(f"SELECT SUM(cost_usd) FROM {table} WHERE {column} = :key AND hour >= :h0"),
                             {"key": key, "h0": int(start // 3600)}).scalar()
    return float(value or 0.0)


class BudgetBook:
    def __init__(self, ttl_s: float = 5.0):
        self._ttl_s = ttl_s
        self._budgets: dict[tuple[str, str], tuple[float | None, float | None]] = {}
        self._loaded_at = -1e9
        self._spend: dict[tuple[str, str], tuple[float, float]] = {}  # key -> (spend, read at)
        self._in_flight: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._loaded_at < self._ttl_s:
            return
        try:
            with db.session() as s:
                rows = s.exec(select(Budget)).all()
            self._budgets = {(b.scope, b.key): (b.soft_usd, b.hard_usd) for b in rows}
        except Exception:  # no table yet (a database behind on migrations): enforce nothing rather than fail calls
            self._budgets = {}
        self._loaded_at = now

    def _spent(self, scope_key: tuple[str, str]) -> float:
        cached = self._spend.get(scope_key)
        if cached is None or time.monotonic() - cached[1] > 2.0:
            cached = (month_spend(*scope_key), time.monotonic())
            self._spend[scope_key] = cached
        return cached[0] + self._in_flight.get(scope_key, 0.0)

    def reserve(self, customer: str | None, feature: str, estimate) -> tuple[list[tuple[str, str]], float]:
        """Hold the call's worst-case cost (`estimate()`, priced only when a budget applies) against every budget
        that applies; returns what to release, or raises BudgetExceeded and holds nothing."""
        with self._lock:
            self._refresh()
            keys = [k for k in (("customer", customer), ("feature", feature)) if k[1] and k in self._budgets]
            if not keys:
                return [], 0.0
            estimate = estimate()
            _, month = month_start()
            for key in keys:
                soft, hard = self._budgets[key]
                spent = self._spent(key)
                if hard is not None and spent + estimate > hard:
                    raise BudgetExceeded(BudgetStatus(key[0], key[1], soft, hard, spent, month), estimate)
            for key in keys:
                self._in_flight[key] = self._in_flight.get(key, 0.0) + estimate
            return keys, estimate

    def release(self, keys: list[tuple[str, str]], estimate: float) -> None:
        """The call is logged (its real cost now counts in the rollups): drop the hold and re-read spend soon."""
        with self._lock:
            for key in keys:
                self._in_flight[key] = max(0.0, self._in_flight.get(key, 0.0) - estimate)
                self._spend.pop(key, None)


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
        limits = []
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
        if limits == [None, None]:
            raise ValueError(f"row {i + 1} ({key}): give a soft or a hard budget")
        if None not in limits and limits[0] > limits[1]:
            raise ValueError(f"row {i + 1} ({key}): the soft budget must not exceed the hard budget")
        if (scope, key) in clean:
            raise ValueError(f"{scope} {key!r} appears twice")
        clean[(scope, key)] = (limits[0], limits[1])
    with db.session() as s:
        for budget in s.exec(select(Budget)).all():
            if (budget.scope, budget.key) not in clean:
                s.delete(budget)
        for (scope, key), (soft, hard) in clean.items():
            s.merge(Budget(scope=scope, key=key, soft_usd=soft, hard_usd=hard, updated_at=time.time()))
