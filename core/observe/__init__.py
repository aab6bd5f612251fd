"""Looking at the request log: dashboard totals, percentiles, time series, breakdowns and single calls; cost and
drift analysis, eval decay, investigations, model-migration reports, model-worker health and the synthetic demo
traffic (`_synthetic`). Evals live in core.evals and the annotation queue in core.annotation.

Aggregates come from hourly rollups the log writer keeps in the same transaction as each row, and
percentiles from their log-scale latency histogram (exact to about 5 %), so a million rows read in well under a second.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlmodel import col, select

from core import db
from core.llm import RequestStatus, bucket_latency_ms
from core.tables import RequestLog

DIMENSIONS = ("feature", "model", "tier", "prompt_version", "customer")
PERCENTILES = (50, 95, 99)


@dataclass(frozen=True)
class LogFilter:
    """Which raw rows to list. Dimension filters are exact-match lists passed as bound parameters."""

    since: float
    until: float
    features: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    customers: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()

    @classmethod
    def last(cls, hours: float, **kwargs) -> "LogFilter":
        now = time.time()
        return cls(since=now - hours * 3600, until=now + 60, **kwargs)

    def where(self) -> tuple[str, dict]:
        clauses = ["created_at >= :since", "created_at < :until"]
        params: dict = {"since": self.since, "until": self.until}
        for column, values in (
            ("feature", self.features), ("model", self.models), ("customer", self.customers),
            ("status", self.statuses),
        ):
            if values:
                names = [f"{column}_{i}" for i in range(len(values))]
                clauses.append(f"{column} IN ({', '.join(':' + n for n in names)})")
                # PostgreSQL text cannot hold NUL; no stored value contains one, so dropping it changes no match.
                params.update({n: str(v).replace("\x00", "\ufffd") for n, v in zip(names, values)})
        return " AND ".join(clauses), params


@dataclass
class Totals:
    requests: int = 0
    calls: int = 0  # logical requests (a fallback chain counts once)
    cost_usd: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    errors: int = 0
    fallbacks: int = 0
    cancelled: int = 0
    refusals: int = 0
    ttft_sum: float = 0.0
    ttft_n: int = 0
    latency_sum: float = 0.0
    histogram: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, row) -> None:
        n = int(row["n"])
        self.requests += n
        self.cost_usd += float(row["cost"] or 0)
        self.tokens_in += int(row["tin"] or 0)
        self.tokens_out += int(row["tout"] or 0)
        self.latency_sum += float(row["lat"] or 0)
        self.ttft_sum += float(row["ttft"] or 0)
        self.ttft_n += int(row["ttft_n"] or 0)
        self.refusals += int(row["refusals"] or 0)
        status = row["status"]
        if status == RequestStatus.ERROR:
            self.errors += n
        elif status == RequestStatus.FALLBACK:
            self.fallbacks += n
        elif status == RequestStatus.CANCELLED:
            self.cancelled += n

    def as_dict(self) -> dict:
        done = max(self.requests, 1)
        return {
            "requests": self.requests,
            "cost_usd": self.cost_usd,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "errors": self.errors,
            "fallbacks": self.fallbacks,
            "cancelled": self.cancelled,
            "error_rate": self.errors / done if self.requests else 0.0,
            "fallback_rate": self.fallbacks / done if self.requests else 0.0,
            "refusal_rate": self.refusals / done if self.requests else 0.0,
            "latency_avg_ms": self.latency_sum / done if self.requests else None,
            "ttft_avg_ms": self.ttft_sum / self.ttft_n if self.ttft_n else None,
            **{f"latency_p{p}_ms": percentile(self.histogram, p) for p in PERCENTILES},
        }


def percentile(histogram: dict[int, int], pct: float) -> float | None:
    total = sum(histogram.values())
    if not total:
        return None
    rank = pct / 100 * total
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return round(bucket_latency_ms(bucket), 1)
    return round(bucket_latency_ms(max(histogram)), 1)


_SUMS = (
    "SUM(n) AS n, SUM(cost_usd) AS cost, SUM(tokens_in) AS tin, SUM(tokens_out) AS tout, "
    "SUM(latency_sum) AS lat, SUM(ttft_sum) AS ttft, SUM(ttft_n) AS ttft_n, SUM(refusals) AS refusals"
)
_BREAKDOWN_COLUMNS = ("requests", "cost_usd", "tokens_in", "tokens_out", "error_rate", "fallback_rate",
                      "latency_avg_ms", "ttft_avg_ms")


@dataclass
class Dashboard:
    window: "Window"
    totals: dict
    series: list[dict]
    breakdowns: dict[str, list[dict]]
    recent: list[dict]
    elapsed_ms: float


@dataclass(frozen=True)
class Window:
    """A span of whole hours (the rollups' grain), newest hour included."""

    first_hour: int
    last_hour: int

    @classmethod
    def last(cls, hours: int, now: float | None = None) -> "Window":
        current = int((now or time.time()) // 3600)
        return cls(first_hour=current - max(1, int(hours)) + 1, last_hour=current)

    @property
    def since(self) -> float:
        return self.first_hour * 3600.0

    @property
    def until(self) -> float:
        return (self.last_hour + 1) * 3600.0

    @property
    def bucket_hours(self) -> int:
        return 1 if self.last_hour - self.first_hour < 72 else 24


def dashboard(window: Window, recent_limit: int = 50, recent: LogFilter | None = None) -> Dashboard:
    """Everything the Dashboard page draws: three rollup reads and one indexed read of recent calls."""
    started = time.perf_counter()
    params = {"h0": window.first_hour, "h1": window.last_hour, "bh": window.bucket_hours}
    span = "hour BETWEEN :h0 AND :h1"
    with db.get_engine().connect() as conn:
        time_rows = conn.execute(text(
            f"SELECT hour / :bh AS tb, status, latency_bucket AS lb, {_SUMS} FROM log_rollup_time "
            f"WHERE {span} GROUP BY hour / :bh, status, latency_bucket"), params).mappings().all()
        dim_rows = conn.execute(text(
            f"SELECT feature, model, tier, prompt_version, status, {_SUMS} FROM log_rollup_dims WHERE {span} "
            "GROUP BY feature, model, tier, prompt_version, status"), params).mappings().all()
        customer_rows = conn.execute(text(
            f"SELECT customer, status, {_SUMS} FROM log_rollup_customer WHERE {span} "
            "GROUP BY customer, status"), params).mappings().all()
    recent_rows = recent_calls(recent or LogFilter(since=window.since, until=window.until), recent_limit)

    totals = Totals()
    per_bucket: dict[int, Totals] = defaultdict(Totals)
    for row in time_rows:
        n = int(row["n"])
        totals.add(row)
        totals.histogram[row["lb"]] += n
        bucket = per_bucket[int(row["tb"])]
        bucket.add(row)
        bucket.histogram[row["lb"]] += n
    series = []  # every bucket of the window, empty ones included, so the time axis is honest
    for index in range(window.first_hour // window.bucket_hours, window.last_hour // window.bucket_hours + 1):
        values = (per_bucket.get(index) or Totals()).as_dict()
        values["bucket_start"] = index * window.bucket_hours * 3600.0
        series.append(values)

    groups: dict[str, dict[str, Totals]] = {d: defaultdict(Totals) for d in DIMENSIONS}
    for row in dim_rows:
        for dim in DIMENSIONS[:-1]:
            groups[dim][row[dim] or "(none)"].add(row)
    for row in customer_rows:
        groups["customer"][row["customer"] or "(none)"].add(row)
    tables = {}
    for dim, by_value in groups.items():
        rows = []
        for key, t in by_value.items():
            values = t.as_dict()
            rows.append({dim: key, **{k: values[k] for k in _BREAKDOWN_COLUMNS}})
        rows.sort(key=lambda r: (-r["cost_usd"], -r["requests"]))
        tables[dim] = rows

    return Dashboard(window=window, totals=totals.as_dict(), series=series, breakdowns=tables,
                     recent=recent_rows, elapsed_ms=(time.perf_counter() - started) * 1000)


def recent_calls(flt: LogFilter, limit: int = 50) -> list[dict]:
    """The newest attempts matching the filter, newest first (uses the created_at index)."""
    where, params = flt.where()
    with db.get_engine().connect() as conn:
        rows = conn.execute(text(
            "SELECT id, request_id, attempt, created_at, feature, task, tier, provider, model, customer, "
            '"user", status, tokens_in, tokens_out, ttft_ms, latency_ms, cost_usd, error '
            f"FROM request_log WHERE {where} ORDER BY created_at DESC LIMIT :limit"),
            {**params, "limit": max(1, min(int(limit), 1000))}).mappings().all()
    return [dict(r) for r in rows]


def call_record(row_id: int) -> dict | None:
    """The full logged record of one attempt, input and output included."""
    with db.session() as s:
        row = s.get(RequestLog, row_id)
        return row.model_dump() if row else None


def request_attempts(request_id: str) -> list[dict]:
    with db.session() as s:
        rows = s.exec(select(RequestLog).where(RequestLog.request_id == request_id)
                     .order_by(col(RequestLog.attempt)))
        return [r.model_dump() for r in rows.all()]


def tail(limit: int = 20, after_id: int = 0) -> list[dict]:
    """Newest rows (for `keel logs tail`); `after_id` returns only rows written since."""
    with db.session() as s:
        query = select(RequestLog).where(col(RequestLog.id) > after_id).order_by(col(RequestLog.id).desc()).limit(limit)
        return [r.model_dump() for r in reversed(s.exec(query).all())]


from core.observe._analysis import (  # noqa: E402  (analysis reads reuse `percentile` above)
    WEEKDAYS, Concentration, Drift, TimeOfDay, capability_drift, cost_concentration, gini, hour_of_day_and_weekday,
    lorenz_points, paid_plan_usd, time_of_day, top_share,
)
from core.observe._decay import (  # noqa: E402
    DEFAULT_DAYS as DECAY_DEFAULT_DAYS, DEFAULT_DISTANCE as DECAY_DEFAULT_DISTANCE, MAX_SEND as DECAY_MAX_SEND,
    PRODUCTION_CAP as DECAY_PRODUCTION_CAP, DecayError, Discrimination, decay_features, decay_report, decay_reports,
    get_decay_report, latest_decay_reports, send_cluster_to_review, user_text,
)
from core.observe._investigate import (  # noqa: E402
    MAX_N as INVESTIGATION_MAX_N, Factor, InvestigationError, InvestigationPlan, get_investigation,
    investigation_to_eval_case, list_investigations, plan_investigation, start_investigation,
)
from core.observe._model_migration import (  # noqa: E402
    MigrationError, Readiness, feature_readiness, get_migration_report, list_lifecycle, list_migration_reports,
    migrations_due, remove_lifecycle, report_rows, set_lifecycle, start_migration_report,
)
from core.observe._worker_health import WORKER_CRASH_MARKERS, model_worker  # noqa: E402
