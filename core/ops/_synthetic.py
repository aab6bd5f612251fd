"""Synthetic request-log rows: realistic enough for charts and for the 1M-row dashboard benchmark."""

from __future__ import annotations

import math
import random
import time
import uuid

from core import db
from core.llm import latency_bucket, record_log_rows
from core.llm._rollup import sampled_for_review

_FEATURES = {
    "workspace": (["summarize", "improve", "fix_grammar", "continue", "translate"], "capable"),
    "support": (["classify", "answer", "summarize_handoff"], "fast"),
    "search": (["expand_query", "answer"], "capable"),
    "review": (["triage", "review"], "capable"),
    "completion": (["fim"], "code"),
    "playground": (["chat"], "capable"),
}
_MODELS = [("embedded", "smollm2-135m-instruct", 0.05, 0.10), ("openai", "gpt-4o-mini", 0.15, 0.60),
           ("openai", "gpt-4o", 2.5, 10.0)]
# The `capable` tier switches model half-way through the generated span, with a planted capability drift:
# (provider, model, price in, price out, refusal rate, JSON-valid rate, empty-output rate).
CAPABLE_BEFORE = ("openai", "gpt-4o", 2.5, 10.0, 0.01, 0.97, 0.005)
CAPABLE_AFTER = ("openai", "gpt-4.1-mini", 0.4, 1.6, 0.06, 0.85, 0.02)
_OTHER_DRIFT = (0.01, 0.97, 0.005)
_JSON_TASKS = {"classify", "triage", "expand_query", "review", "summarize_handoff"}


def model_switch_time(*, days: float, end: float) -> float:
    """When the synthetic `capable` tier changes model: the midpoint of the generated span."""
    return end - days * 86400 / 2


def synthetic_rows(n: int, *, days: float = 30.0, seed: int = 7, end: float | None = None,
                   customers: int = 200) -> list[dict]:
    """`n` rows over the last `days`, with a power-law spread of customers and a daily cycle."""
    rng = random.Random(seed)
    end = end or time.time()
    start = end - days * 86400
    names = [f"cust-{i:03d}" for i in range(customers)]
    weights = [1 / (i + 1) ** 1.1 for i in range(customers)]
    feats = list(_FEATURES)
    switch = model_switch_time(days=days, end=end)
    rows = []
    for _ in range(n):
        t = start + rng.random() * (end - start)
        hour = (t % 86400) / 3600
        if rng.random() > 0.55 + 0.45 * math.sin((hour - 6) / 24 * 2 * math.pi):
            t = start + rng.random() * (end - start)  # thin out night-time traffic
        if int(t // 86400 + 3) % 7 >= 5 and rng.random() < 0.5:  # weekends (UTC) are quieter
            t = start + rng.random() * (end - start)
        feature = rng.choice(feats)
        tasks, tier = _FEATURES[feature]
        task = rng.choice(tasks)
        if tier == "capable":
            provider, model, p_in, p_out, p_refuse, p_json, p_empty = CAPABLE_BEFORE if t < switch else CAPABLE_AFTER
        else:
            provider, model, p_in, p_out = _MODELS[0] if rng.random() < 0.6 else _MODELS[1]
            p_refuse, p_json, p_empty = _OTHER_DRIFT
        tokens_in = int(rng.lognormvariate(5.5, 0.8))
        tokens_out = int(rng.lognormvariate(4.5, 0.7))
        ttft = rng.lognormvariate(5.0, 0.5)
        latency = ttft + tokens_out * rng.uniform(5, 12)
        r = rng.random()
        status = "error" if r < 0.02 else "fallback" if r < 0.05 else "cancelled" if r < 0.06 else "ok"
        if status == "ok" and rng.random() < p_empty:
            tokens_out = 0
        json_valid = (rng.random() < p_json) if task in _JSON_TASKS and status != "error" else None
        rows.append(dict(
            request_id=uuid.UUID(int=rng.getrandbits(128)).hex, attempt=0, created_at=t, feature=feature,
            task=task, prompt_id=f"{feature}/{tasks[0]}", prompt_version=rng.choice(["a1b2c3", "d4e5f6"]),
            tier=tier, provider=provider, model=model, user=f"user{rng.randrange(500)}@example.com",
            customer=rng.choices(names, weights)[0], input_text=None, output_text=None,
            tokens_in=tokens_in, tokens_out=tokens_out if status != "error" else 0,
            ttft_ms=ttft if status != "error" else None, latency_ms=latency, latency_bucket=latency_bucket(latency),
            cost_usd=(tokens_in * p_in + tokens_out * p_out) / 1e6, status=status,
            error="HTTP 500 from provider" if status == "error" else None,
            refusal=rng.random() < p_refuse, json_valid=json_valid,
        ))
    return rows


def ensure_customer_workspaces(customers: int = 200, *, paid_share: float = 0.3, seed: int = 7) -> int:
    """Workspace rows for the synthetic customers `cust-NNN` (a seeded share on the paid plan); returns how
    many were created. Existing rows are left alone."""
    from core.tables import Workspace

    rng = random.Random(seed)
    created = 0
    with db.session() as s:
        for i in range(customers):
            plan = "paid" if rng.random() < paid_share else "free"
            cid = f"cust-{i:03d}"
            if s.get(Workspace, cid) is None:
                s.add(Workspace(id=cid, name=f"Synthetic customer {i:03d}", plan=plan, created_at=time.time()))
                created += 1
        s.commit()
    return created


# What a reviewer reads for a sampled synthetic call: (input, output) per feature, some good, some not.
_REVIEW_TEXTS = {
    "workspace": [
        ("[user] Summarize: The Q3 planning meeting moved the launch to April and assigned the budget to Alice.",
         "The launch moves to April; Alice owns the budget."),
        ("[user] Fix grammar: their going to the offsite tomorow", "They're going to the offsite tomorrow."),
        ("[user] Translate to German: good morning", "I'm sorry, but I can't help with that."),
    ],
    "support": [
        ("[user] Where is my order ORD-10042?", "Your order ORD-10042 shipped on Monday and arrives Thursday."),
        ("[user] I want a refund for invoice INV-2024-0031", "Sure! I have refunded everything on your account."),
    ],
    "search": [
        ("[user] What is the parental leave policy?", "Employees get 16 weeks of paid parental leave [1]."),
        ("[user] Who approves travel over $5,000?", ""),
    ],
    "review": [("[user] Review this diff: + password = 'hunter2'", '{"findings": [{"line": 1, "issue": "hard-coded '
                                                                     'secret"}]}')],
    "completion": [("def fib(n):\n    ", "return n if n < 2 else fib(n - 1) + fib(n - 2)")],
    "playground": [("[user] What is the capital of France?", "The capital of France is Paris."),
                   ("[user] Write a haiku about logs", "Logs flow like rivers / every call a quiet stone / "
                                                        "the dashboard listens")],
}


def insert_synthetic(n: int, *, batch: int = 20_000, review_share: float = 0.0, **kwargs) -> int:
    """Insert `n` rows; with `review_share`, the calls that share samples get readable text and join the queue."""
    engine = db.get_engine()
    written = 0
    seed = kwargs.pop("seed", 7)
    while written < n:
        size = min(batch, n - written)
        rows = synthetic_rows(size, seed=seed + written, **kwargs)
        if review_share:
            for row in rows:
                if row["status"] in ("ok", "fallback") and sampled_for_review(row["request_id"], review_share):
                    bank = _REVIEW_TEXTS[row["feature"]]
                    row["input_text"], row["output_text"] = bank[int(row["request_id"][:4], 16) % len(bank)]
        with engine.begin() as conn:
            record_log_rows(conn, rows, review_share=review_share)
        written += size
    return written
