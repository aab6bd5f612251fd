"""Synthetic request-log rows: realistic enough for charts and for the 1M-row dashboard benchmark."""

from __future__ import annotations

import math
import random
import time
import uuid

from core import db
from core.llm import latency_bucket, record_log_rows

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


def synthetic_rows(n: int, *, days: float = 30.0, seed: int = 7, end: float | None = None,
                   customers: int = 200) -> list[dict]:
    """`n` rows over the last `days`, with a power-law spread of customers and a daily cycle."""
    rng = random.Random(seed)
    end = end or time.time()
    start = end - days * 86400
    names = [f"cust-{i:03d}" for i in range(customers)]
    weights = [1 / (i + 1) ** 1.1 for i in range(customers)]
    feats = list(_FEATURES)
    rows = []
    for _ in range(n):
        t = start + rng.random() * (end - start)
        hour = (t % 86400) / 3600
        if rng.random() > 0.55 + 0.45 * math.sin((hour - 6) / 24 * 2 * math.pi):
            t = start + rng.random() * (end - start)  # thin out night-time traffic
        feature = rng.choice(feats)
        tasks, tier = _FEATURES[feature]
        provider, model, p_in, p_out = _MODELS[0] if rng.random() < 0.6 else rng.choice(_MODELS[1:])
        tokens_in = int(rng.lognormvariate(5.5, 0.8))
        tokens_out = int(rng.lognormvariate(4.5, 0.7))
        ttft = rng.lognormvariate(5.0, 0.5)
        latency = ttft + tokens_out * rng.uniform(5, 12)
        r = rng.random()
        status = "error" if r < 0.02 else "fallback" if r < 0.05 else "cancelled" if r < 0.06 else "ok"
        rows.append(dict(
            request_id=uuid.UUID(int=rng.getrandbits(128)).hex, attempt=0, created_at=t, feature=feature,
            task=rng.choice(tasks), prompt_id=f"{feature}/{tasks[0]}", prompt_version=rng.choice(["a1b2c3", "d4e5f6"]),
            tier=tier, provider=provider, model=model, user=f"user{rng.randrange(500)}@example.com",
            customer=rng.choices(names, weights)[0], input_text=None, output_text=None,
            tokens_in=tokens_in, tokens_out=tokens_out if status != "error" else 0,
            ttft_ms=ttft if status != "error" else None, latency_ms=latency, latency_bucket=latency_bucket(latency),
            cost_usd=(tokens_in * p_in + tokens_out * p_out) / 1e6, status=status,
            error="HTTP 500 from provider" if status == "error" else None,
            refusal=rng.random() < 0.01, json_valid=None,
        ))
    return rows


def insert_synthetic(n: int, *, batch: int = 20_000, **kwargs) -> int:
    engine = db.get_engine()
    written = 0
    seed = kwargs.pop("seed", 7)
    while written < n:
        size = min(batch, n - written)
        rows = synthetic_rows(size, seed=seed + written, **kwargs)
        with engine.begin() as conn:
            record_log_rows(conn, rows)
        written += size
    return written
