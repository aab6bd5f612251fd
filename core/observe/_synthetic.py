"""Synthetic request-log rows: realistic enough for charts and for the 1M-row dashboard benchmark.

Every synthetic row is demo data: its request id starts with DEMO_PREFIX (a real id is 32 hex digits, so never
does), which is how pages label it and how `keel demo clear` finds exactly these rows and nothing else."""

from __future__ import annotations

import math
import random
import time
import uuid

from core import db
from core.llm import RequestStatus, latency_bucket, record_log_rows
from core.llm._rollup import sampled_for_review
from core.llm._types import ANSWERED

_FEATURES = {
    "workspace": (["summarize", "improve", "fix_grammar", "continue", "translate"], "capable"),
    "support": (["classify", "answer", "summarize_handoff"], "fast"),
    "search": (["expand_query", "answer"], "capable"),
    "review": (["triage", "review"], "capable"),
    "completion": (["fim"], "code"),
    "playground": (["chat"], "capable"),
}
DEMO_PREFIX = "demo-"
# Prices (USD per million tokens in, out) for the models the planted-drift traffic uses; any other model is priced
# like the embedded one.
_PRICES = {"smollm2-135m-instruct": (0.05, 0.10), "gpt-4o-mini": (0.15, 0.60), "gpt-4o": (2.5, 10.0),
           "gpt-4.1-mini": (0.4, 1.6)}
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


def is_demo(request_id: str | None) -> bool:
    """True for a row the demo seed or `keel demo traffic` wrote."""
    return request_id is not None and request_id.startswith(DEMO_PREFIX)


def demo_id_bounds() -> tuple[str, str]:
    """[low, high) request-id range holding exactly the demo ids; a range, so both databases use the index."""
    return DEMO_PREFIX, DEMO_PREFIX[:-1] + chr(ord(DEMO_PREFIX[-1]) + 1)


def _tier_models(tiers: dict[str, list[str]]) -> dict[str, list[tuple[str, str, float, float]]]:
    out = {}
    for tier, chain in tiers.items():
        targets = []
        for target in chain:
            provider, _, model = target.partition("/")
            targets.append((provider, model) + _PRICES.get(model, _PRICES["smollm2-135m-instruct"]))
        if targets:
            out[tier] = targets
    return out


def synthetic_rows(n: int, *, days: float = 30.0, seed: int = 7, end: float | None = None,
                   customers: int = 200, tiers: dict[str, list[str]] | None = None) -> list[dict]:
    """`n` rows over the last `days`, with a power-law spread of customers and a daily cycle.

    Without `tiers` the capable tier switches model half-way (planted drift, for benchmarks and drift tests);
    with `tiers` (the configured tier map) every row uses a configured model, so a fresh install's charts name
    only models it really has."""
    rng = random.Random(seed)
    end = end or time.time()
    start = end - days * 86400
    names = [f"cust-{i:03d}" for i in range(customers)]
    weights = [1 / (i + 1) ** 1.1 for i in range(customers)]
    feats = list(_FEATURES)
    switch = model_switch_time(days=days, end=end)
    configured = _tier_models(tiers) if tiers else None
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
        if configured:
            targets = configured.get(tier) or next(iter(configured.values()))
            provider, model, p_in, p_out = targets[0] if len(targets) == 1 or rng.random() < 0.8 else targets[1]
            p_refuse, p_json, p_empty = _OTHER_DRIFT
        elif tier == "capable":
            provider, model, p_in, p_out, p_refuse, p_json, p_empty = CAPABLE_BEFORE if t < switch else CAPABLE_AFTER
        else:
            provider, model, p_in, p_out = _MODELS[0] if rng.random() < 0.6 else _MODELS[1]
            p_refuse, p_json, p_empty = _OTHER_DRIFT
        tokens_in = int(rng.lognormvariate(5.5, 0.8))
        tokens_out = int(rng.lognormvariate(4.5, 0.7))
        ttft = rng.lognormvariate(5.0, 0.5)
        latency = ttft + tokens_out * rng.uniform(5, 12)
        r = rng.random()
        status = (RequestStatus.ERROR if r < 0.02 else RequestStatus.FALLBACK if r < 0.05
                  else RequestStatus.CANCELLED if r < 0.06 else RequestStatus.OK)
        if status == RequestStatus.OK and rng.random() < p_empty:
            tokens_out = 0
        json_valid = (rng.random() < p_json) if task in _JSON_TASKS and status != RequestStatus.ERROR else None
        rows.append(dict(
            request_id=DEMO_PREFIX + uuid.UUID(int=rng.getrandbits(128)).hex, attempt=0, created_at=t, feature=feature,
            task=task, prompt_id=f"{feature}/{tasks[0]}", prompt_version=rng.choice(["a1b2c3", "d4e5f6"]),
            tier=tier, provider=provider, model=model, user=f"user{rng.randrange(500)}@example.com",
            customer=rng.choices(names, weights)[0], input_text=None, output_text=None,
            tokens_in=tokens_in, tokens_out=tokens_out if status != RequestStatus.ERROR else 0,
            ttft_ms=ttft if status != RequestStatus.ERROR else None, latency_ms=latency, latency_bucket=latency_bucket(latency),
            cost_usd=(tokens_in * p_in + tokens_out * p_out) / 1e6, status=status,
            error="HTTP 500 from provider" if status == RequestStatus.ERROR else None,
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


# What a reviewer reads for a sampled synthetic call: built from parts per feature, so the queue holds varied
# calls (some good, some plainly bad), not a handful of canned pairs repeated.
_PEOPLE = ("Alice", "Bram", "Chen", "Dana", "Emeka", "Farah", "Goran", "Hiro", "Ines", "Jonas")
_TOPICS = ("the Q3 launch", "the office move", "the hiring plan", "the pricing change", "the data-centre migration",
           "the customer survey", "the security audit", "the holiday rota")
_MONTHS = ("March", "April", "May", "June", "September", "October")
_ITEMS = ("camera", "doorbell", "thermostat", "hub", "motion sensor", "outdoor camera")
_QUESTIONS = (("parental leave policy", "Employees get {n} weeks of paid parental leave [1]."),
              ("travel approval limit", "Trips over ${n},000 need a director's approval [1]."),
              ("laptop refresh cycle", "Laptops are replaced every {n} years [2]."),
              ("on-call allowance", "On-call pays {n}0 euros per weekend [1]."),
              ("expense deadline", ""))
_OFFICES = ("Berlin", "Lagos", "Lisbon", "Osaka", "Toronto", "Warsaw")
_MODULES = ("utils", "stats", "text", "maths", "helpers", "core", "lib", "tools")
_CODE = (("def fib(n):\n    ", "return n if n < 2 else fib(n - 1) + fib(n - 2)"),
         ("def mean(xs):\n    ", "return sum(xs) / len(xs)"),
         ("def is_even(k):\n    ", "return k % 2 == 1"),
         ("def slug(title):\n    ", "return '-'.join(title.lower().split())"),
         ("def clamp(x, lo, hi):\n    ", "return max(lo, min(x, hi))"))


def review_text(feature: str, rng: random.Random) -> tuple[str, str]:
    """(input, output) of one demo call a reviewer reads; about one in four is a plainly bad answer."""
    who, topic, month = rng.choice(_PEOPLE), rng.choice(_TOPICS), rng.choice(_MONTHS)
    n, bad = rng.randint(2, 20), rng.random() < 0.25
    order, item = f"ORD-{rng.randint(10000, 99999)}", rng.choice(_ITEMS)
    if feature == "workspace":
        return rng.choice((
            (f"[user] Summarize: the meeting on {topic} moved the deadline to {month} and {who} owns the budget.",
             f"The deadline for {topic} is now {month}; {who} owns the budget." if not bad
             else f"The meeting cancelled {topic}."),
            (f"[user] Fix grammar: {who.lower()} are going to present {topic} tomorow",
             f"{who} is going to present {topic} tomorrow." if not bad else "I'm sorry, but I can't help with that."),
            (f"[user] Translate to German: {who} will send the notes on {topic} in {month}.",
             f"{who} schickt die Notizen im {month}." if not bad else f"{who} will send the notes in {month}."),
        ))
    if feature == "support":
        return rng.choice((
            (f"[user] Where is my order {order}?", f"Your {item} ({order}) shipped and arrives in {n % 5 + 1} days."
             if not bad else "I have cancelled your order."),
            (f"[user] My {item} stopped connecting after the update", f"Restart the {item} and re-pair it in the "
             f"app; if it still fails I'll hand you to an agent." if not bad else "Please buy a new one."),
            (f"[user] I want a refund for my {item}", "I've passed this to our billing team; they reply within a day."
             if not bad else "Sure! I have refunded everything on your account."),
        ))
    if feature == "search":
        question, answer = rng.choice(_QUESTIONS)
        office = rng.choice(_OFFICES)
        return (f"[user] What is the {question} for the {office} office?",
                answer.format(n=n) if not bad else f"The {question} is {n * 7} days.")
    if feature == "review":
        secret = rng.choice(("password", "api_key", "token"))
        return (f"[user] Review this diff: + {secret} = 'x{n}{who.lower()}'",
                '{"findings": [{"line": 1, "issue": "hard-coded secret"}]}' if not bad else '{"findings": []}')
    if feature == "completion":
        prefix, suggestion = rng.choice(_CODE)
        return f"# {rng.choice(_MODULES)}.py\n{prefix}", suggestion
    return rng.choice((
        (f"[user] What month is {topic} due?", f"{topic.capitalize()} is due in {month}."),
        (f"[user] Write a haiku about {item}s", f"A small {item} waits / every call a quiet stone / the dashboard "
                                              "listens"),
        (f"[user] Give {who} three tips for {topic}", "1. Start early. 2. Write it down. 3. Ask for help."
         if not bad else "No."),
    ))


def insert_synthetic(n: int, *, batch: int = 20_000, review_share: float = 0.0, **kwargs) -> int:
    """Insert `n` demo rows; with `review_share`, the calls that share samples get readable text and join the
    queue. `tiers` (the configured tier map) keeps every row on a configured model."""
    engine = db.get_engine()
    written = 0
    seed = kwargs.pop("seed", 7)
    while written < n:
        size = min(batch, n - written)
        rows = synthetic_rows(size, seed=seed + written, **kwargs)
        if review_share:
            for row in rows:
                if row["status"] in ANSWERED and sampled_for_review(row["request_id"], review_share):
                    rng = random.Random(row["request_id"])
                    row["input_text"], row["output_text"] = review_text(row["feature"], rng)
        with engine.begin() as conn:
            record_log_rows(conn, rows, review_share=review_share)
        written += size
    return written
