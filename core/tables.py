"""The SQL tables every subsystem shares: the request log, prices, workspaces and API keys.

Schema changes go through Alembic migrations in `core/migrations`; these classes must match them
(a test compares the two).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, LargeBinary, Table, Text, inspect, text
from sqlmodel import Field, SQLModel


def table_of(model: type[SQLModel]) -> Table:
    """The Core `Table` behind a `table=True` model, for INSERT/UPDATE on many rows. It is the model's `__table__`,
    which SQLModel sets when the class is created but does not declare, so a type checker cannot see that name."""
    mapper = inspect(model, raiseerr=False)
    if mapper is None or not isinstance(mapper.local_table, Table):
        raise TypeError(f"{model.__name__} is not a table=True model, so it has no table")
    return mapper.local_table


class RequestLog(SQLModel, table=True):
    """One row per LLM call attempt (a fallback writes one row per attempt, sharing `request_id`)."""

    __tablename__ = "request_log"
    __table_args__ = (
        Index("ix_request_log_created_at", "created_at"),
        Index("ix_request_log_request_id", "request_id"),
        Index("ix_request_log_feature_created", "feature", "created_at"),
        Index("ix_request_log_customer_created", "customer", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(max_length=40)
    attempt: int = 0
    created_at: float  # unix seconds, so buckets are plain arithmetic on SQLite and PostgreSQL alike
    feature: str = Field(max_length=64)
    task: str = Field(max_length=64)
    prompt_id: str | None = Field(default=None, max_length=128)
    prompt_version: str | None = Field(default=None, max_length=32)
    tier: str = Field(max_length=32)
    provider: str = Field(max_length=64)
    model: str = Field(max_length=128)
    user: str | None = Field(default=None, max_length=255)
    customer: str | None = Field(default=None, max_length=128)
    input_text: str | None = Field(default=None, sa_column=Column(Text))
    output_text: str | None = Field(default=None, sa_column=Column(Text))
    tokens_in: int = 0
    tokens_out: int = 0
    ttft_ms: float | None = None
    latency_ms: float = 0.0
    latency_bucket: int = 0  # log-scale histogram bucket of latency_ms, for fast percentiles
    cost_usd: float = 0.0
    status: str = Field(max_length=16)  # ok | error | fallback | cancelled | budget_refused
    error: str | None = Field(default=None, sa_column=Column(Text))
    refusal: bool = False
    json_valid: bool | None = None
    metadata_json: str | None = Field(default=None, sa_column=Column(Text))  # always valid JSON (migration 0010)


class RequestLogQuarantine(SQLModel, table=True):
    """A request-log row the database refused even after cleaning, kept (ASCII JSON) with the error, so one bad
    row never costs the other rows of its batch (migration 0010)."""

    __tablename__ = "request_log_quarantine"
    __table_args__ = (Index("ix_request_log_quarantine_at", "quarantined_at"),)

    id: int | None = Field(default=None, primary_key=True)
    quarantined_at: float
    request_id: str = Field(max_length=40)
    error: str = Field(sa_column=Column(Text, nullable=False))
    row_json: str = Field(sa_column=Column(Text, nullable=False))


class _RollupSums(SQLModel):
    """Measures shared by the hourly rollups that keep dashboard reads fast at millions of rows."""

    n: int = 0
    cost_usd: float = 0.0
    tokens_in: int = Field(default=0, sa_type=BigInteger)
    tokens_out: int = Field(default=0, sa_type=BigInteger)
    latency_sum: float = 0.0
    ttft_sum: float = 0.0
    ttft_n: int = 0
    refusals: int = 0


class LogRollupTime(_RollupSums, table=True):
    """Per hour, status and latency bucket: totals, time series and percentiles."""

    __tablename__ = "log_rollup_time"
    __table_args__ = {"sqlite_with_rowid": False}

    hour: int = Field(primary_key=True)
    status: str = Field(primary_key=True, max_length=16)
    latency_bucket: int = Field(primary_key=True)


class LogRollupDims(_RollupSums, table=True):
    """Per hour and feature × model × tier × prompt version × status: the breakdowns."""

    __tablename__ = "log_rollup_dims"
    __table_args__ = {"sqlite_with_rowid": False}

    hour: int = Field(primary_key=True)
    feature: str = Field(primary_key=True, max_length=64)
    model: str = Field(primary_key=True, max_length=128)
    tier: str = Field(primary_key=True, max_length=32)
    prompt_version: str = Field(primary_key=True, max_length=32)  # "" when the call had no prompt file
    status: str = Field(primary_key=True, max_length=16)
    # Capability-drift measures (migration 0003): calls that asked for JSON, of those the valid ones,
    # and successful calls that returned no output.
    json_asked: int = 0
    json_valid: int = 0
    empty_outputs: int = 0


class LogRollupCustomer(_RollupSums, table=True):
    """Per hour, customer and status: cost by customer without scanning the log."""

    __tablename__ = "log_rollup_customer"
    __table_args__ = {"sqlite_with_rowid": False}

    hour: int = Field(primary_key=True)
    customer: str = Field(primary_key=True, max_length=128)  # "" when the call had no customer
    status: str = Field(primary_key=True, max_length=16)


class ModelPrice(SQLModel, table=True):
    """List price per model in USD per million tokens; users edit it on the Prices page."""

    __tablename__ = "model_price"

    model: str = Field(primary_key=True, max_length=128)
    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0
    updated_at: float = 0.0


class Workspace(SQLModel, table=True):
    __tablename__ = "workspace"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    plan: str = Field(default="free", max_length=16)
    created_at: float = 0.0


class ApiKey(SQLModel, table=True):
    """A per-workspace key for `/v1` and `/api`; only its SHA-256 is stored."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(foreign_key="workspace.id", max_length=64, index=True)
    name: str = Field(max_length=200)
    prefix: str = Field(max_length=16)
    key_hash: str = Field(max_length=64, unique=True)
    created_at: float = 0.0
    revoked_at: float | None = None
    last_used_at: float | None = None


class WorkspaceMember(SQLModel, table=True):
    """Who belongs to a workspace, and as what: `admin` (members, plan, usage) or `member`."""

    __tablename__ = "workspace_member"

    workspace_id: str = Field(foreign_key="workspace.id", primary_key=True, max_length=64)
    user_sub: str = Field(primary_key=True, max_length=255, index=True)
    role: str = Field(default="member", max_length=16)  # admin | member
    created_at: float = 0.0


class WorkspaceDocument(SQLModel, table=True):
    """A text/markdown document in a workspace; `version` grows by one on every change (optimistic locking)."""

    __tablename__ = "workspace_document"
    __table_args__ = (Index("ix_workspace_document_ws_updated", "workspace_id", "updated_at"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(foreign_key="workspace.id", max_length=64)
    title: str = Field(max_length=200)
    content: str = Field(default="", sa_column=Column(Text, nullable=False))
    version: int = 1
    created_by: str = Field(max_length=255)
    created_at: float = 0.0
    updated_by: str = Field(max_length=255)
    updated_at: float = 0.0


class WorkspaceUsage(SQLModel, table=True):
    """AI responses used per workspace per calendar month (UTC, "YYYY-MM"); reserved with a conditional UPDATE."""

    __tablename__ = "workspace_usage"
    __table_args__ = {"sqlite_with_rowid": False}

    workspace_id: str = Field(foreign_key="workspace.id", primary_key=True, max_length=64)
    month: str = Field(primary_key=True, max_length=7)
    used: int = 0


class WorkspaceCredit(SQLModel, table=True):
    """One reserved AI response: who used it, for which task, and how it ended (reserved | spent | refunded)."""

    __tablename__ = "workspace_credit"
    __table_args__ = (Index("ix_workspace_credit_ws_month", "workspace_id", "month"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(foreign_key="workspace.id", max_length=64)
    month: str = Field(max_length=7)
    user_sub: str = Field(max_length=255)
    task: str = Field(max_length=64)
    status: str = Field(default="reserved", max_length=16)
    request_id: str | None = Field(default=None, max_length=40)
    created_at: float = 0.0
    settled_at: float | None = None


class RevokedSession(SQLModel, table=True):
    """A signed-out UI session. Streamlit's session cookie stays validly signed for 30 days after sign-out (the
    browser merely drops it), so every route that accepts the cookie checks here (migration 0012)."""

    __tablename__ = "revoked_session"
    __table_args__ = (Index("ix_revoked_session_expires_at", "expires_at"),)

    key: str = Field(primary_key=True, max_length=64)  # core.auth.session_key: a hash of the sign-in's claims
    sub: str = Field(max_length=255)
    revoked_at: float
    expires_at: float  # the cookie cannot outlive this; the row is pruned after it


class Budget(SQLModel, table=True):
    """A monthly (UTC calendar month) budget in USD for one customer/workspace or one feature."""

    __tablename__ = "budget"

    scope: str = Field(primary_key=True, max_length=16)  # "customer" | "feature"
    key: str = Field(primary_key=True, max_length=128)
    soft_usd: float | None = None  # over it: an alert on the dashboard
    hard_usd: float | None = None  # over it: the gateway refuses the call
    updated_at: float = 0.0


class BudgetHold(SQLModel, table=True):
    """A call in flight holds its worst-case cost against a budget until the transaction that writes its cost
    row deletes the hold; shared by every process on the database (migration 0010)."""

    __tablename__ = "budget_hold"
    __table_args__ = (Index("ix_budget_hold_scope_key", "scope", "key", "expires_at"),)

    id: str = Field(primary_key=True, max_length=32)
    scope: str = Field(max_length=16)
    key: str = Field(max_length=128)
    amount_usd: float
    request_id: str = Field(max_length=40)
    created_at: float
    expires_at: float  # a process killed mid-call cannot hold budget forever


# --- LLM ops: review queue and evals (migration 0005) -------------------------------------------------------------


class ReviewItem(SQLModel, table=True):
    """A call sampled for human review (one per request); a reviewer marks it good or bad with a note."""

    __tablename__ = "review_item"
    __table_args__ = (Index("ix_review_item_verdict_sampled", "verdict", "sampled_at"),)

    request_id: str = Field(primary_key=True, max_length=40)
    sampled_at: float = 0.0
    feature: str = Field(max_length=64)
    model: str = Field(max_length=128)
    prompt_version: str | None = Field(default=None, max_length=32)
    verdict: str | None = Field(default=None, max_length=8)  # None (to review) | good | bad
    note: str | None = Field(default=None, sa_column=Column(Text))
    reviewer: str | None = Field(default=None, max_length=255)
    reviewed_at: float | None = None
    eval_case_id: int | None = None


class EvalCase(SQLModel, table=True):
    """An eval case collected at run time (review queue, support escalation), kept apart from the repo's datasets."""

    __tablename__ = "eval_case"
    __table_args__ = (Index("ix_eval_case_suite", "suite"),)

    id: int | None = Field(default=None, primary_key=True)
    suite: str = Field(max_length=64)
    input_text: str = Field(sa_column=Column(Text, nullable=False))
    expected: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON object
    notes: str = Field(default="", sa_column=Column(Text, nullable=False))
    source: str = Field(max_length=32)  # review_queue | support_escalation | manual
    source_ref: str | None = Field(default=None, max_length=128)
    created_by: str | None = Field(default=None, max_length=255)
    created_at: float = 0.0
    rubric_version: str | None = Field(default=None, max_length=32)  # the labelling rubric (migration 0011)
    labelled_by: str | None = Field(default=None, max_length=255)


class EvalRun(SQLModel, table=True):
    """One run of one suite: what ran, against which baseline, and the verdict."""

    __tablename__ = "eval_run"
    __table_args__ = (Index("ix_eval_run_suite_started", "suite", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    suite: str = Field(max_length=64)
    model: str | None = Field(default=None, max_length=128)
    prompt_version: str | None = Field(default=None, max_length=64)
    started_at: float = 0.0
    finished_at: float | None = None
    status: str = Field(default="running", max_length=16)  # running | passed | failed | error
    cases: int = 0
    score: float | None = None  # share of curated cases passed
    baseline_run_id: int | None = None
    baseline_score: float | None = None
    regressions: int = 0
    cost_usd: float = 0.0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    summary: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON: scorers, segments, message
    started_by: str | None = Field(default=None, max_length=255)


class EvalResult(SQLModel, table=True):
    """One case of one run: the output, each scorer's verdict, time and cost."""

    __tablename__ = "eval_result"
    __table_args__ = {"sqlite_with_rowid": False}

    run_id: int = Field(primary_key=True)
    case_id: str = Field(primary_key=True, max_length=128)
    segment: str = Field(default="", max_length=64)
    source: str = Field(default="dataset", max_length=32)  # dataset | review_queue | support_escalation | manual
    passed: bool = False
    score: float = 0.0
    input_text: str = Field(default="", sa_column=Column(Text, nullable=False))
    expected: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    output: str = Field(default="", sa_column=Column(Text, nullable=False))
    scores: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON: scorer -> {score, passed, why}
    latency_ms: float = 0.0
    cost_usd: float = 0.0
    error: str | None = Field(default=None, sa_column=Column(Text))
    branch: str | None = Field(default=None, max_length=48)  # the agent branch the case took (migration 0011)


# -- Support (core.support): the demo company's accounts, plans, orders and invoices; conversations, messages,
# -- handoffs, tool runs and CSAT. Messages are append-only rows, so concurrent writers never overwrite each other.


class SupportPlan(SQLModel, table=True):
    __tablename__ = "support_plan"

    id: str = Field(primary_key=True, max_length=16)  # basic | plus | pro | business
    name: str = Field(max_length=64)
    monthly_usd: float = 0.0
    summary: str = Field(default="", max_length=300)


class SupportAccount(SQLModel, table=True):
    """A customer account of the demo company; `email` links it to a signed-in user."""

    __tablename__ = "support_account"

    id: str = Field(primary_key=True, max_length=16)  # ACC-1001
    email: str = Field(max_length=255, unique=True)
    name: str = Field(max_length=200)
    plan_id: str = Field(foreign_key="support_plan.id", max_length=16)
    status: str = Field(default="active", max_length=16)  # active | suspended | closed
    email_verified: bool = False
    verification_sent_at: float | None = None
    created_at: float = 0.0


class SupportOrder(SQLModel, table=True):
    __tablename__ = "support_order"

    id: str = Field(primary_key=True, max_length=16)  # ORD-50001
    account_id: str = Field(foreign_key="support_account.id", max_length=16, index=True)
    item: str = Field(max_length=200)
    status: str = Field(max_length=16)  # processing | shipped | delivered | cancelled
    total_usd: float = 0.0
    carrier: str | None = Field(default=None, max_length=32)
    tracking: str | None = Field(default=None, max_length=64)
    created_at: float = 0.0
    shipped_at: float | None = None
    delivered_at: float | None = None


class SupportInvoice(SQLModel, table=True):
    __tablename__ = "support_invoice"

    id: str = Field(primary_key=True, max_length=16)  # INV-2026-0042
    account_id: str = Field(foreign_key="support_account.id", max_length=16, index=True)
    period: str = Field(max_length=7)  # YYYY-MM
    description: str = Field(max_length=200)
    amount_usd: float = 0.0
    status: str = Field(max_length=16)  # paid | open | overdue
    issued_at: float = 0.0
    due_at: float = 0.0
    paid_at: float | None = None


class SupportConversation(SQLModel, table=True):
    """One support conversation; status moves bot → waiting (handed off) → claimed → resolved."""

    __tablename__ = "support_conversation"
    __table_args__ = (Index("ix_support_conversation_customer", "customer_sub", "created_at"),
                      Index("ix_support_conversation_status", "status", "escalated_at"))

    id: int | None = Field(default=None, primary_key=True)
    customer_sub: str = Field(max_length=255)
    account_id: str | None = Field(default=None, max_length=16)
    status: str = Field(default="bot", max_length=16)  # bot | waiting | claimed | resolved
    intent: str | None = Field(default=None, max_length=32)  # the first confident intent
    route: str | None = Field(default=None, max_length=32)  # the latest route: a SupportRoute value
    handled_by: str = Field(default="bot", max_length=16)  # bot | human
    model: str = Field(default="classifier", max_length=128)  # the LLM that answered, or "classifier"
    bot_confidence: float | None = None  # the lowest confidence the bot acted on
    rephrase_asked: bool = False
    pending_action: str | None = Field(default=None, sa_column=Column(Text))  # JSON: a mutating tool call
    priority: str | None = Field(default=None, max_length=8)  # high | normal, set on handoff
    assigned_to: str | None = Field(default=None, max_length=255)
    created_at: float = 0.0
    updated_at: float = 0.0
    escalated_at: float | None = None
    resolved_at: float | None = None


class SupportMessage(SQLModel, table=True):
    """Append-only: one row per message or internal note, never updated."""

    __tablename__ = "support_message"
    __table_args__ = (Index("ix_support_message_conversation", "conversation_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="support_conversation.id")
    role: str = Field(max_length=16)  # customer | bot | agent | note | system
    author: str = Field(max_length=255)
    text: str = Field(sa_column=Column(Text, nullable=False))
    meta: str | None = Field(default=None, sa_column=Column(Text))  # JSON: route, intent, sources, tool
    created_at: float = 0.0


class SupportHandoff(SQLModel, table=True):
    """The package an agent reads: summary, entities, reason, confidence, suggested resolution, priority."""

    __tablename__ = "support_handoff"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="support_conversation.id", unique=True)
    reason: str = Field(max_length=300)
    summary: str = Field(sa_column=Column(Text, nullable=False))
    summary_source: str = Field(default="extractive", max_length=16)  # extractive | llm
    entities: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON
    intent: str | None = Field(default=None, max_length=32)
    bot_confidence: float | None = None
    suggested_resolution: str = Field(default="", sa_column=Column(Text, nullable=False))
    priority: str = Field(default="normal", max_length=8)
    created_at: float = 0.0


class SupportToolRun(SQLModel, table=True):
    """Audit of every tool call: arguments, the policy decision and the outcome."""

    __tablename__ = "support_tool_run"
    __table_args__ = (Index("ix_support_tool_run_conversation", "conversation_id"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int | None = Field(default=None)
    account_id: str | None = Field(default=None, max_length=16)
    tool: str = Field(max_length=32)
    args: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    status: str = Field(max_length=16)  # ok | refused | error
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_at: float = 0.0


class SupportCsat(SQLModel, table=True):
    __tablename__ = "support_csat"

    conversation_id: int = Field(foreign_key="support_conversation.id", primary_key=True)
    score: int
    comment: str | None = Field(default=None, sa_column=Column(Text))
    created_at: float = 0.0


# -- code completion (core.completion) ------------------------------------------------------------


class CompletionEvent(SQLModel, table=True):
    """One suggestion request of the completion engine: where it came from (model, cache, typed-ahead, joined),
    what the user saw and when (perceived latency), and whether it was cancelled or accepted. The model call
    itself is in `request_log` (feature `completion`), linked by `request_id`."""

    __tablename__ = "completion_event"
    __table_args__ = (
        Index("ix_completion_event_created_at", "created_at"),
        Index("ix_completion_event_suggestion_id", "suggestion_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    created_at: float  # unix seconds
    suggestion_id: str = Field(max_length=32)
    session_id: str = Field(default="", max_length=64)
    user: str | None = Field(default=None, max_length=255)
    customer: str | None = Field(default=None, max_length=128)
    path: str = Field(default="", max_length=300)
    language: str = Field(default="text", max_length=32)
    status: str = Field(max_length=16)  # shown | empty | cancelled | superseded | error
    source: str = Field(max_length=16)  # model | exact | typed_ahead | joined | none
    cache_hit: bool = False
    cancelled: bool = False
    accepted: bool = False
    speculative: bool = False
    speculative_hit: bool = False
    perceived_ms: float | None = None
    model_ms: float | None = None
    debounce_ms: float = 0.0
    tokens_out: int = 0
    chars: int = 0
    request_id: str | None = Field(default=None, max_length=40)


# -- document search (core.search): the document registry (content hash, access metadata) and the audit log -----


class SearchDocument(SQLModel, table=True):
    """One indexed document: where it came from, its hashes (so a re-sync skips unchanged files) and its access."""

    __tablename__ = "search_document"
    __table_args__ = (Index("ix_search_document_root", "root"),)

    doc_id: str = Field(primary_key=True, max_length=255)
    root: str = Field(max_length=1000)  # the ingested folder this document was found under
    path: str = Field(max_length=1000)  # relative to root
    title: str = Field(max_length=300)
    url: str | None = Field(default=None, max_length=1000)
    kind: str = Field(max_length=16)  # markdown | text | html | pdf
    access_groups: str = Field(default="[]", sa_column=Column(Text, nullable=False))  # JSON list
    clearance_level: int = 0
    file_hash: str = Field(max_length=64)  # raw bytes (and sidecar): equal means nothing to do
    content_hash: str = Field(max_length=64)  # extracted body: equal means no re-embedding
    chunks: int = 0
    size_bytes: int = 0
    access_edited: bool = False  # access was changed by an admin; the file's front matter no longer rules
    indexed_at: float = 0.0


class SearchAudit(SQLModel, table=True):
    """One row per retrieval: who asked what, under which filter, and exactly which chunks came back."""

    __tablename__ = "search_audit"
    __table_args__ = (Index("ix_search_audit_created_at", "created_at"), Index("ix_search_audit_user", "user"))

    id: int | None = Field(default=None, primary_key=True)
    created_at: float
    user: str = Field(max_length=255)
    channel: str = Field(max_length=16)  # ui | api | cli | eval
    query: str = Field(sa_column=Column(Text, nullable=False))
    filter_expr: str = Field(sa_column=Column(Text, nullable=False))
    doc_ids: str = Field(default="[]", sa_column=Column(Text, nullable=False))  # JSON list, rank order
    chunk_ids: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    results: int = 0
    latency_ms: float = 0.0


# -- PR review (core.review): reviews cached by diff hash, their comments, decisions per repository ------------


class ReviewRun(SQLModel, table=True):
    """One finished review, cached under `cache_key` (diff hash + repository + model configuration + engine
    version) so the same diff is never reviewed twice; comments are in `review_comment`."""

    __tablename__ = "review_run"
    __table_args__ = (
        Index("ux_review_run_cache_key", "cache_key", unique=True),
        Index("ix_review_run_diff_hash", "diff_hash"),
        Index("ix_review_run_created_at", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    cache_key: str = Field(max_length=64)
    diff_hash: str = Field(max_length=64)
    repo_key: str = Field(max_length=500)
    model_key: str = Field(max_length=300)  # tier and model (or "tools only") the review ran with
    engine_version: str = Field(max_length=32)
    created_at: float
    user: str | None = Field(default=None, max_length=255)
    verdict: str = Field(max_length=24)  # approve | comment | request_changes
    files: int = 0
    added_lines: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    wall_ms: float = 0.0
    result_json: str = Field(sa_column=Column(Text, nullable=False))  # summary, notices, timeline, triage, stats


class ReviewComment(SQLModel, table=True):
    """One comment of a cached review, on a line the PR added or changed."""

    __tablename__ = "review_comment"
    __table_args__ = (Index("ix_review_comment_review_id", "review_id"),)

    id: int | None = Field(default=None, primary_key=True)
    review_id: int = Field(foreign_key="review_run.id")
    position: int = 0
    path: str = Field(max_length=1000)
    line: int
    severity: str = Field(max_length=16)  # blocker | major | minor | nit
    category: str = Field(max_length=16)  # correctness | security | performance | quality
    message: str = Field(sa_column=Column(Text, nullable=False))
    suggestion: str = Field(default="", sa_column=Column(Text, nullable=False))
    explanation: str = Field(default="", sa_column=Column(Text, nullable=False))
    source: str = Field(max_length=8)  # tool | model
    confidence: float = 0.0
    specificity: float = 0.0
    rule: str = Field(default="", max_length=300)
    fingerprint: str = Field(max_length=32)
    code: str = Field(default="", sa_column=Column(Text, nullable=False))
    also_at: str = Field(default="[]", sa_column=Column(Text, nullable=False))  # JSON list of lines


class ReviewDecision(SQLModel, table=True):
    """A user's accept or dismiss of a suggestion, remembered per repository by fingerprint: a dismissed
    suggestion is not raised again on re-review, wherever the code moved."""

    __tablename__ = "review_decision"
    __table_args__ = (Index("ux_review_decision_repo_fingerprint", "repo_key", "fingerprint", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    repo_key: str = Field(max_length=500)
    fingerprint: str = Field(max_length=32)
    decision: str = Field(max_length=16)  # dismissed | accepted
    path: str = Field(max_length=1000)
    category: str = Field(max_length=16)
    message: str = Field(sa_column=Column(Text, nullable=False))
    user: str | None = Field(default=None, max_length=255)
    created_at: float


# -- Eval health (core.evals, core.observe; migration 0011): reruns, model lifecycle and migration reports, relabel audits,
# decay.
# -- Background work keeps its progress in these rows, so any server process and a reloaded page see it.


class Investigation(SQLModel, table=True):
    """A hypothesis about one logged call, tested by rerunning it N times while varying one factor."""

    __tablename__ = "investigation"
    __table_args__ = (Index("ix_investigation_request", "request_id"),)

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(max_length=40)
    hypothesis: str = Field(sa_column=Column(Text, nullable=False))
    factor: str = Field(max_length=24)  # model | prompt_version | temperature | context
    variants: str = Field(default="[]", sa_column=Column(Text, nullable=False))  # JSON list of values
    n: int = 1  # reruns per variant
    status: str = Field(default="queued", max_length=16)  # queued | running | done | error
    done: int = 0
    total: int = 0
    estimate_usd: float = 0.0
    cost_usd: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    outcomes: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON: variant -> distribution
    error: str | None = Field(default=None, sa_column=Column(Text))
    created_by: str | None = Field(default=None, max_length=255)
    created_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float | None = None
    eval_case_id: int | None = None


class ModelLifecycle(SQLModel, table=True):
    """A priced model's deprecation date and the person who owns its migration."""

    __tablename__ = "model_lifecycle"

    model: str = Field(primary_key=True, max_length=128)
    deprecation_date: str = Field(max_length=10)  # YYYY-MM-DD
    owner: str = Field(max_length=255)
    replacement: str | None = Field(default=None, max_length=128)
    updated_at: float = 0.0


class MigrationReport(SQLModel, table=True):
    """`keel eval compare --model A --model B` stored: quality, cost, latency p50/p95 per suite and segment."""

    __tablename__ = "migration_report"
    __table_args__ = (Index("ix_migration_report_created", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    model_from: str = Field(max_length=128)
    model_to: str = Field(max_length=128)
    status: str = Field(default="running", max_length=16)  # running | done | error
    done: int = 0
    total: int = 0
    suites: str = Field(default="[]", sa_column=Column(Text, nullable=False))  # JSON list
    report: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON
    error: str | None = Field(default=None, sa_column=Column(Text))
    created_by: str | None = Field(default=None, max_length=255)
    created_at: float = 0.0
    finished_at: float | None = None


class RelabelAudit(SQLModel, table=True):
    """A re-label audit of one suite: k sampled cases labelled again without seeing the old label."""

    __tablename__ = "relabel_audit"

    id: int | None = Field(default=None, primary_key=True)
    suite: str = Field(max_length=64)
    k: int = 0
    rubric_version: str = Field(max_length=32)  # the rubric the new labels follow
    status: str = Field(default="open", max_length=16)  # open | done
    created_by: str | None = Field(default=None, max_length=255)
    created_at: float = 0.0
    finished_at: float | None = None


class RelabelItem(SQLModel, table=True):
    """One sampled case of an audit: the old label (hidden from the labeller) and the new one."""

    __tablename__ = "relabel_item"
    __table_args__ = {"sqlite_with_rowid": False}

    audit_id: int = Field(primary_key=True)
    case_id: str = Field(primary_key=True, max_length=128)
    position: int = 0
    input_text: str = Field(sa_column=Column(Text, nullable=False))
    old_label: str = Field(max_length=128)
    old_labelled_by: str | None = Field(default=None, max_length=255)
    old_rubric_version: str | None = Field(default=None, max_length=32)
    new_label: str | None = Field(default=None, max_length=128)
    labelled_by: str | None = Field(default=None, max_length=255)
    labelled_at: float | None = None


class DecayReport(SQLModel, table=True):
    """Snapshot eval decay of one feature: production inputs with no eval case nearby, clustered."""

    __tablename__ = "decay_report"
    __table_args__ = (Index("ix_decay_report_feature_created", "feature", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    feature: str = Field(max_length=64)
    days: float = 7.0
    distance: float = 0.5
    created_at: float = 0.0
    report: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON


class DecayVector(SQLModel, table=True):
    """A cached embedding of one input text (migration 0014): decay reports re-encode only texts not seen before."""

    __tablename__ = "decay_vector"
    __table_args__ = (Index("ix_decay_vector_created", "created_at"),)

    key: str = Field(primary_key=True, max_length=32)  # blake2b of encoder name + text
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # float32, unit length
    created_at: float = 0.0


# --- Durable jobs (migration 0013) ---------------------------------------------------------------------------------


class JobRow(SQLModel, table=True):
    """One background job (search sync, eval run, page review, support summary): its state lives here, not in a
    process, so every replica's page and the CLI see and cancel it; the queue (huey) only carries the id."""

    __tablename__ = "job"
    __table_args__ = (Index("ix_job_status_lease", "status", "lease_until"),
                      Index("ix_job_kind_created", "kind", "created_at"),
                      # One active job per kind and key, enforced by the database across replicas (migration 0015).
                      Index("ux_job_active_dedupe", "kind", "dedupe_key", unique=True,
                            postgresql_where=text("status IN ('queued', 'running')"),
                            sqlite_where=text("status IN ('queued', 'running')")))

    id: str = Field(primary_key=True, max_length=32)
    kind: str = Field(max_length=64)
    target: str = Field(max_length=200)  # "module:function" of a registered job function
    label: str = Field(default="", max_length=300)
    owner: str = Field(default="", max_length=255)
    dedupe_key: str | None = Field(default=None, max_length=300)
    status: str = Field(max_length=16)  # core.jobs.JobStatus
    params_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    progress_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    eta_s: float | None = None
    result_json: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    attempts: int = 0
    max_attempts: int = 1
    worker: str | None = Field(default=None, max_length=120)  # host:pid:nonce of the process running it
    cancel_requested: bool = False
    created_at: float
    enqueued_at: float
    run_after: float = 0.0  # a delayed job (support summary) is not run before this
    started_at: float | None = None
    heartbeat_at: float | None = None
    lease_until: float | None = None  # a running job whose lease passes is failed or retried by any replica
    finished_at: float | None = None
