"""Analysis reads beyond totals: cost concentration per customer, time-of-day patterns, capability drift.

All three read the hourly rollups (never the raw log), so they stay fast at millions of rows:
- concentration: `log_rollup_customer` grouped by customer, joined in Python with `workspace.plan`;
- time of day: `log_rollup_time` grouped by hour (≤ 24 × days rows), folded into hour-of-day × weekday (UTC);
- drift: `log_rollup_dims` grouped by day × model × prompt version.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import text

from core import db
from core.llm import RequestStatus

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DEFAULT_PAID_PLAN_USD = 20.0
_MONTH_HOURS = 30 * 24


def paid_plan_usd() -> float:
    """Monthly price of the paid plan, from KEEL_PAID_PLAN_USD (default 20)."""
    try:
        return float(os.environ.get("KEEL_PAID_PLAN_USD", DEFAULT_PAID_PLAN_USD))
    except ValueError:
        return DEFAULT_PAID_PLAN_USD


def plan_monthly_usd(plan: str | None, paid_usd: float | None = None) -> float:
    if plan in (None, "", "free"):
        return 0.0
    return paid_plan_usd() if paid_usd is None else paid_usd


# ---------------------------------------------------------------------------------------------------------
# Pure helpers (unit-tested without a database)


def lorenz_points(costs: list[float]) -> list[tuple[float, float]]:
    """Lorenz curve: (cumulative share of customers, cumulative share of cost), customers sorted by ascending
    cost, starting at (0, 0) and ending at (1, 1). Empty or all-zero input gives the equality line's ends."""
    values = sorted(max(0.0, float(c)) for c in costs)
    total = sum(values)
    n = len(values)
    if not n or total <= 0:
        return [(0.0, 0.0), (1.0, 1.0)]
    points = [(0.0, 0.0)]
    running = 0.0
    for i, v in enumerate(values, 1):
        running += v
        points.append((i / n, running / total))
    points[-1] = (1.0, 1.0)
    return points


def gini(costs: list[float]) -> float:
    """Gini coefficient of the cost distribution (0 = everyone costs the same, → 1 = one customer costs all),
    i.e. 1 − 2 × area under the Lorenz curve (trapezoids)."""
    points = lorenz_points(costs)
    if len(points) <= 2 and not any(c > 0 for c in costs):
        return 0.0
    area = sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in zip(points, points[1:]))
    return max(0.0, 1.0 - 2.0 * area)


def top_share(costs: list[float], fraction: float) -> float:
    """Share of total cost from the top `fraction` of customers (at least one customer when there are any)."""
    values = sorted((max(0.0, float(c)) for c in costs), reverse=True)
    total = sum(values)
    if not values or total <= 0:
        return 0.0
    k = max(1, int(round(len(values) * fraction)))
    return sum(values[:k]) / total


def hour_of_day_and_weekday(hour: int) -> tuple[int, int]:
    """The UTC hour of day (0–23) and weekday (Mon = 0) of an hour index (unix seconds // 3600)."""
    return hour % 24, (hour // 24 + 3) % 7  # 1970-01-01 was a Thursday


# ---------------------------------------------------------------------------------------------------------
# Cost concentration


@dataclass
class Concentration:
    customers: list[dict]  # sorted by cost descending: customer, plan, requests, cost_usd, revenue_usd, margin_usd, over_cost
    total_cost_usd: float
    top1_share: float
    top10_share: float
    gini: float
    lorenz: list[tuple[float, float]]
    over_cost: int  # customers costing more than their pro-rated plan revenue
    paid_plan_usd: float
    window_hours: int
    elapsed_ms: float = 0.0


def cost_concentration(window, *, paid_usd: float | None = None) -> Concentration:
    """Spend per customer over the window, its concentration and cost against pro-rated plan revenue.

    Calls without a customer are left out. Revenue is the plan's monthly price × window hours / 720;
    customers without a workspace row count as free."""
    started = time.perf_counter()
    price = paid_plan_usd() if paid_usd is None else paid_usd
    with db.get_engine().connect() as conn:
        rows = conn.execute(text(
            "SELECT customer, SUM(n) AS n, SUM(cost_usd) AS cost FROM log_rollup_customer "
            "WHERE hour BETWEEN :h0 AND :h1 AND customer <> '' GROUP BY customer"),
            {"h0": window.first_hour, "h1": window.last_hour}).mappings().all()
        plans: dict[str, str] = {ws: plan for ws, plan in conn.execute(text("SELECT id, plan FROM workspace"))}
    hours = window.last_hour - window.first_hour + 1
    customers = []
    for r in rows:
        plan = plans.get(r["customer"]) or "free"
        revenue = plan_monthly_usd(plan, price) * hours / _MONTH_HOURS
        cost = float(r["cost"] or 0)
        customers.append({"customer": r["customer"], "plan": plan, "requests": int(r["n"]), "cost_usd": cost,
                          "revenue_usd": revenue, "margin_usd": revenue - cost, "over_cost": cost > revenue})
    customers.sort(key=lambda c: (-c["cost_usd"], c["customer"]))
    costs = [c["cost_usd"] for c in customers]
    return Concentration(
        customers=customers, total_cost_usd=sum(costs), top1_share=top_share(costs, 0.01),
        top10_share=top_share(costs, 0.10), gini=gini(costs), lorenz=lorenz_points(costs),
        over_cost=sum(1 for c in customers if c["over_cost"]), paid_plan_usd=price, window_hours=hours,
        elapsed_ms=(time.perf_counter() - started) * 1000)


# ---------------------------------------------------------------------------------------------------------
# Time of day


@dataclass
class _Cell:
    n: int = 0
    errors: int = 0
    fallbacks: int = 0
    ttft_sum: float = 0.0
    ttft_n: int = 0
    histogram: dict[int, int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class TimeOfDay:
    """7 × 24 grids (rows = weekday Mon..Sun, columns = UTC hour 0..23); None where there were no calls."""

    requests: list[list[int]]
    latency_p95_ms: list[list[float | None]]
    ttft_avg_ms: list[list[float | None]]
    error_rate: list[list[float | None]]
    fallback_rate: list[list[float | None]]
    elapsed_ms: float = 0.0

    def cell(self, weekday: int, hour_of_day: int) -> dict:
        return {name: getattr(self, name)[weekday][hour_of_day]
                for name in ("requests", "latency_p95_ms", "ttft_avg_ms", "error_rate", "fallback_rate")}


def time_of_day(window) -> TimeOfDay:
    """p95 latency, average time to first token, error and fallback rates by UTC hour of day × weekday."""
    from core.observe import percentile

    started = time.perf_counter()
    with db.get_engine().connect() as conn:
        # Folded into hour of day × weekday in SQL (same arithmetic as `hour_of_day_and_weekday`), so at most
        # 7 × 24 × statuses × latency buckets rows come back, not one per hour of the window.
        rows = conn.execute(text(
            "SELECT hour % 24 AS hod, (hour / 24 + 3) % 7 AS wd, status, latency_bucket AS lb, SUM(n) AS n, "
            "SUM(ttft_sum) AS ttft, SUM(ttft_n) AS ttft_n FROM log_rollup_time WHERE hour BETWEEN :h0 AND :h1 "
            "GROUP BY hour % 24, (hour / 24 + 3) % 7, status, latency_bucket"),
            {"h0": window.first_hour, "h1": window.last_hour}).mappings().all()
    cells = [[_Cell() for _ in range(24)] for _ in range(7)]
    for r in rows:
        hod, wd = int(r["hod"]), int(r["wd"])
        c = cells[wd][hod]
        n = int(r["n"])
        c.n += n
        c.histogram[int(r["lb"])] += n
        c.ttft_sum += float(r["ttft"] or 0)
        c.ttft_n += int(r["ttft_n"] or 0)
        if r["status"] == RequestStatus.ERROR:
            c.errors += n
        elif r["status"] == RequestStatus.FALLBACK:
            c.fallbacks += n
    return TimeOfDay(
        requests=[[c.n for c in row] for row in cells],
        latency_p95_ms=[[percentile(c.histogram, 95) if c.n else None for c in row] for row in cells],
        ttft_avg_ms=[[c.ttft_sum / c.ttft_n if c.ttft_n else None for c in row] for row in cells],
        error_rate=[[c.errors / c.n if c.n else None for c in row] for row in cells],
        fallback_rate=[[c.fallbacks / c.n if c.n else None for c in row] for row in cells],
        elapsed_ms=(time.perf_counter() - started) * 1000)


# ---------------------------------------------------------------------------------------------------------
# Capability drift


@dataclass
class Drift:
    """Daily points per series; `series[key]` is a list of dicts sorted by day, key = model or prompt version."""

    by: str
    series: dict[str, list[dict]]
    changes: list[dict]  # {"day_start", "from", "to", "tier", "feature"}: the day a tier/feature's main model changed
    elapsed_ms: float = 0.0


def _rates(n, refusals, json_asked, json_valid, empty, tokens_out, ok) -> dict:
    return {
        "requests": n,
        "refusal_rate": refusals / n if n else None,
        "json_asked": json_asked,
        "json_valid_rate": json_valid / json_asked if json_asked else None,
        "empty_rate": empty / ok if ok else None,
        "tokens_out_avg": tokens_out / ok if ok else None,
    }


def capability_drift(window, by: str = "model", *, feature: str | None = None, tier: str | None = None) -> Drift:
    """Daily refusal rate, JSON-valid rate (over calls that asked for JSON), empty-output rate and mean output
    length (over successful calls), per model or per prompt version (`by`), optionally for one feature or tier.
    `changes` lists the days each tier's dominant model changed (for markers on the charts)."""
    if by not in ("model", "prompt_version"):
        raise ValueError("by must be 'model' or 'prompt_version'")
    started = time.perf_counter()
    clauses = ["hour BETWEEN :h0 AND :h1"]
    params: dict = {"h0": window.first_hour, "h1": window.last_hour}
    if feature:
        clauses.append("feature = :feature")
        params["feature"] = feature
    if tier:
        clauses.append("tier = :tier")
        params["tier"] = tier
    with db.get_engine().connect() as conn:
        rows = conn.execute(text(
            "SELECT hour / 24 AS day, tier, model, prompt_version, status, SUM(n) AS n, SUM(refusals) AS refusals, "
            "SUM(json_asked) AS ja, SUM(json_valid) AS jv, SUM(empty_outputs) AS em, SUM(tokens_out) AS tout "
            f"FROM log_rollup_dims WHERE {' AND '.join(clauses)} "
            "GROUP BY hour / 24, tier, model, prompt_version, status"), params).mappings().all()
    acc: dict[tuple[str, int], list] = defaultdict(lambda: [0] * 7)
    tier_models: dict[tuple[str, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        key = r[by] or "(none)"
        day = int(r["day"])
        n = int(r["n"])
        a = acc[(key, day)]
        a[0] += n
        a[1] += int(r["refusals"] or 0)
        a[2] += int(r["ja"] or 0)
        a[3] += int(r["jv"] or 0)
        a[4] += int(r["em"] or 0)
        if r["status"] == RequestStatus.OK:
            a[5] += int(r["tout"] or 0)
            a[6] += n
        tier_models[(r["tier"], day)][r["model"]] += n
    series: dict[str, list[dict]] = defaultdict(list)
    for (key, day), a in sorted(acc.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        series[key].append({"day_start": day * 86400.0, **_rates(*a)})
    changes = []
    previous: dict[str, str] = {}
    for (tier_name, day) in sorted(tier_models, key=lambda k: (k[1], k[0])):
        counts = tier_models[(tier_name, day)]
        top = max(counts, key=lambda m: (counts[m], m))
        if tier_name in previous and previous[tier_name] != top:
            changes.append({"day_start": day * 86400.0, "tier": tier_name, "from": previous[tier_name], "to": top})
        previous[tier_name] = top
    return Drift(by=by, series=dict(series), changes=changes, elapsed_ms=(time.perf_counter() - started) * 1000)
