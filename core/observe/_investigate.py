"""Rerun discipline: a surprising logged call is investigated with a written hypothesis and one factor varied
(model, prompt version, temperature or retrieved context), N reruns per value through the gateway as feature
`eval`. The outcome distribution, tokens and cost are stored with the hypothesis (table `investigation`), so a
conclusion rests on a distribution rather than on one lucky or unlucky sample, and it can become an eval case.

Progress lives in the row (done/total, updated_at): any server process and a reloaded page see it. A page-started
investigation is a durable job (kind `investigation`): any replica can cancel it, and one whose worker died is
marked error by the reaper instead of staying "running".
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from sqlmodel import col, select

from core import db, jobs
from core.errors import KeelError
from core.jobs import JobCancelled, JobContext
from core.tables import Investigation, RequestLog

MAX_N = 20  # reruns per value
MAX_VARIANTS = 4
MAX_RUNS = 40  # reruns per investigation, all values together
MAX_HYPOTHESIS_CHARS = 2000
MAX_RERUN_TOKENS = 512
STALLED_AFTER_S = 600  # a running row not updated this long lost its worker (the process stopped)
JOB_KIND = "investigation"


class Factor(StrEnum):
    MODEL = "model"
    PROMPT_VERSION = "prompt_version"
    TEMPERATURE = "temperature"
    CONTEXT = "context"


class InvestigationStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"
    STALLED = "stalled"  # shown, never stored: a running row whose worker went away


class InvestigationError(KeelError, ValueError):
    """An investigation that cannot start (bad hypothesis, factor, value or N); nothing was stored."""


@dataclass
class InvestigationPlan:
    """A validated investigation, with the upper-bound cost shown before anything runs."""

    request_id: str
    hypothesis: str
    factor: Factor
    variants: list[str]
    n: int
    messages: list[dict]
    base: dict  # the logged call: feature, task, tier, model, prompt, tokens
    max_tokens: int
    estimate_usd: float
    per_variant_usd: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.n * len(self.variants)

    def as_dict(self) -> dict:
        return {"request_id": self.request_id, "hypothesis": self.hypothesis, "factor": str(self.factor),
                "variants": self.variants, "n": self.n, "runs": self.total, "max_tokens": self.max_tokens,
                "estimate_usd": self.estimate_usd, "per_variant_usd": self.per_variant_usd, "base": self.base}


def logged_call(request_id: str) -> RequestLog:
    """The answered attempt of a logged call (the last attempt when a fallback chain ran)."""
    with db.session() as s:
        row = s.exec(select(RequestLog).where(RequestLog.request_id == str(request_id)[:40])
                     .order_by(col(RequestLog.attempt).desc())).first()
    if row is None:
        raise InvestigationError(f"no logged call with request id {request_id!r}")
    return row


def plan_investigation(request_id: str, hypothesis: str, factor: str, variants: list, n: int) -> InvestigationPlan:
    """Check every input and price the reruns; raises InvestigationError with what to fix."""
    from core.evals import parse_logged_input

    hypothesis = str(hypothesis or "").replace("\x00", "").strip()
    if not hypothesis:
        raise InvestigationError("write the hypothesis first: what you expect to change, and why")
    if len(hypothesis) > MAX_HYPOTHESIS_CHARS:
        raise InvestigationError(f"the hypothesis is {len(hypothesis):,} characters; the limit is {MAX_HYPOTHESIS_CHARS:,}")
    try:
        factor = Factor(str(factor))
    except ValueError:
        raise InvestigationError(f"factor must be one of {', '.join(Factor)}, not {factor!r}") from None
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_N:
        raise InvestigationError(f"N must be a whole number from 1 to {MAX_N}, not {n!r}")
    values = [str(v).strip() for v in (variants or []) if str(v).strip()]
    if not values:
        raise InvestigationError(f"name at least one {factor} value to try")
    if len(values) > MAX_VARIANTS:
        raise InvestigationError(f"at most {MAX_VARIANTS} values per investigation, not {len(values)}")
    if len(set(values)) != len(values):
        raise InvestigationError("each value may appear once")
    if n * len(values) > MAX_RUNS:
        raise InvestigationError(f"{n} × {len(values)} = {n * len(values)} reruns; the limit is {MAX_RUNS}")
    call = logged_call(request_id)
    messages = parse_logged_input(call.input_text or "")
    if not messages:
        raise InvestigationError("this call's input holds no chat messages (redacted, or a raw completion "
                                 "prompt), so it cannot be rerun")
    base = {"feature": call.feature, "task": call.task, "tier": call.tier, "provider": call.provider,
            "model": call.model, "prompt_id": call.prompt_id, "prompt_version": call.prompt_version,
            "tokens_in": call.tokens_in, "tokens_out": call.tokens_out, "status": call.status,
            "output": (call.output_text or "")[:2000]}
    for value in values:
        _variant_messages(factor, value, messages, base)  # raises on a value that cannot apply
        _variant_overrides(factor, value, base)
    max_tokens = max(32, min(MAX_RERUN_TOKENS, 2 * int(call.tokens_out or 0) or 256))
    per_variant = {v: round(n * _run_bound_usd(factor, v, messages, base, max_tokens), 8) for v in values}
    return InvestigationPlan(request_id=call.request_id, hypothesis=hypothesis, factor=factor, variants=values, n=n,
                             messages=messages, base=base, max_tokens=max_tokens,
                             estimate_usd=round(sum(per_variant.values()), 8), per_variant_usd=per_variant)


def _variant_overrides(factor: Factor, value: str, base: dict) -> dict:
    """Request fields for one value: which model/tier, which temperature."""
    from core.llm import get_gateway

    overrides: dict = {"tier": base["tier"], "target": f"{base['provider']}/{base['model']}", "temperature": 0.7}
    gateway = get_gateway()
    if base["provider"] not in gateway.providers:  # the logged provider is gone: rerun on its tier
        overrides.pop("target")
    if factor is Factor.MODEL:
        if value in gateway.settings.tiers:
            overrides = {**overrides, "tier": value}
            overrides.pop("target", None)
        elif "/" in value and value.split("/", 1)[0] in gateway.providers:
            overrides["target"] = value
        else:
            raise InvestigationError(f"unknown model {value!r}; use a tier or provider/model: "
                                     f"{', '.join(gateway.model_ids())}")
    elif factor is Factor.TEMPERATURE:
        try:
            temperature = float(value)
        except ValueError:
            raise InvestigationError(f"temperature {value!r} is not a number") from None
        if not 0.0 <= temperature <= 2.0:
            raise InvestigationError(f"temperature must be from 0 to 2, not {value}")
        overrides["temperature"] = temperature
    return overrides


_CONTEXT_BLOCK = re.compile(r"<(context|sources|documents?)>.*?</\1>", re.S | re.I)


def _variant_messages(factor: Factor, value: str, messages: list[dict], base: dict) -> list[dict]:
    """The messages for one value: the logged ones, with the prompt's system part or the context swapped."""
    if factor is Factor.PROMPT_VERSION:
        from core.evals import EvalTargetError, resolve_prompt

        if not base.get("prompt_id"):
            raise InvestigationError("this call names no prompt, so there is no prompt version to vary")
        try:
            prompt = resolve_prompt(base["prompt_id"], value)
        except (EvalTargetError, ValueError, OSError) as exc:
            raise InvestigationError(f"prompt version {value!r}: {exc}") from None
        rest = [m for m in messages if m["role"] != "system"]
        return ([{"role": "system", "content": prompt.system}] if prompt.system.strip() else []) + rest
    if factor is Factor.CONTEXT:
        if value == "logged":
            return list(messages)
        if value == "none":  # retrieved context removed: system messages and <context>-style blocks dropped
            return [{**m, "content": _CONTEXT_BLOCK.sub("", m["content"])} for m in messages if m["role"] != "system"]
        if value.startswith("text:") and value[5:].strip():
            rest = [m for m in messages if m["role"] != "system"]
            return [{"role": "system", "content": f"Context:\n{value[5:].strip()}"}] + rest
        raise InvestigationError("a context value is 'logged', 'none' or 'text:<replacement context>'")
    return list(messages)


def _request(plan_or_row, factor: Factor, value: str, messages: list[dict], base: dict, max_tokens: int,
             investigation_id: int | None, user: str | None):
    from core.llm import LLMRequest

    o = _variant_overrides(factor, value, base)
    return LLMRequest(messages=_variant_messages(factor, value, messages, base), feature="eval", task="investigate",
                      user=user or "eval", max_tokens=max_tokens, temperature=o["temperature"], tier=o["tier"],
                      target=o.get("target"), prompt_id=base.get("prompt_id"),
                      metadata={"investigation": investigation_id, "factor": str(factor), "value": value})


def _run_bound_usd(factor: Factor, value: str, messages: list[dict], base: dict, max_tokens: int) -> float:
    """An upper bound of one rerun's cost: the input's byte bound and max_tokens out, at the dearest model the
    request may reach (its target, or any model of its tier's fallback chain)."""
    from core.llm import get_gateway

    gateway = get_gateway()
    request = _request(None, factor, value, messages, base, max_tokens, None, None)
    return gateway.worst_case_cost(request)


# -- storing and running -----------------------------------------------------------------------------------------


def start_investigation(plan: InvestigationPlan, *, created_by: str | None = None, background: bool = True) -> int:
    """Store the investigation, then run it (on a worker thread unless `background` is False)."""
    now = time.time()
    row = Investigation(request_id=plan.request_id, hypothesis=plan.hypothesis, factor=str(plan.factor),
                        variants=json.dumps(plan.variants), n=plan.n, status=InvestigationStatus.QUEUED,
                        total=plan.total, estimate_usd=plan.estimate_usd,
                        outcomes=json.dumps({"plan": plan.as_dict()}, default=str), created_by=created_by,
                        created_at=now, updated_at=now)
    with db.session() as s:
        s.add(row)
        s.commit()
        s.refresh(row)
        investigation_id = row.id
    if investigation_id is None:  # SQL assigns the id on insert
        raise InvestigationError("the investigation was not stored: it got no id")
    if background:
        jobs.submit(JOB_KIND, {"investigation_id": investigation_id}, owner=created_by or "",
                    label=f"investigation {investigation_id}", dedupe_key=str(investigation_id))
    else:
        run_investigation(investigation_id)
    return investigation_id


def _investigation_lost(job) -> None:
    """The job ended without running to the end (its worker died, or it was cancelled before it started)."""
    reason = job.error or "the worker running it stopped"
    close_investigation(job.params.get("investigation_id"), f"stopped: {reason}")


@jobs.kind(JOB_KIND, on_lost=_investigation_lost)
def _investigation_job(ctx: JobContext, investigation_id: int) -> dict:
    inv = run_investigation(int(investigation_id), ctx=ctx)
    if inv["status"] == InvestigationStatus.ERROR:
        raise InvestigationError(inv["error"] or "the investigation stopped")  # the job shows it failed, and why
    return {"investigation_id": inv["id"], "status": inv["status"], "done": inv["done"], "cost_usd": inv["cost_usd"]}


def close_investigation(investigation_id: int | None, reason: str) -> bool:
    """Mark a queued or running investigation error with `reason`; False when it had already finished."""
    if investigation_id is None:
        return False
    with db.session() as s:
        row = s.get(Investigation, int(investigation_id))
        if row is None or row.status not in (InvestigationStatus.QUEUED, InvestigationStatus.RUNNING):
            return False
    _update(int(investigation_id), status=InvestigationStatus.ERROR, error=reason[:2000], finished_at=time.time())
    return True


def run_investigation(investigation_id: int, *, ctx: JobContext | None = None) -> dict:
    """Rerun every value N times; after each rerun the row's progress and distribution are updated (and the job's,
    whose cancel stops it between reruns)."""
    from core.llm import LLMError, get_gateway

    with db.session() as s:
        row = s.get(Investigation, investigation_id)
        if row is None:
            raise InvestigationError(f"no investigation {investigation_id}")
        plan = json.loads(row.outcomes).get("plan", {})
        factor, values, n, user = Factor(row.factor), json.loads(row.variants), row.n, row.created_by
    _update(investigation_id, status=InvestigationStatus.RUNNING)
    gateway = get_gateway()
    try:
        call = logged_call(plan["request_id"])
        from core.evals import parse_logged_input

        messages = parse_logged_input(call.input_text or "")
        base, max_tokens = plan["base"], int(plan["max_tokens"])
        samples: dict[str, list[dict]] = {v: [] for v in values}
        done = cost = 0.0
        tokens_in = tokens_out = 0
        for value in values:
            for _ in range(n):
                request = _request(None, factor, value, messages, base, max_tokens, investigation_id, user)
                started = time.perf_counter()
                try:
                    c = gateway.complete(request)
                    one = c.cost_usd
                    sample = {"ok": True, "text": c.text, "model": f"{c.provider}/{c.model}", "tokens_in": c.tokens_in,
                              "tokens_out": c.tokens_out, "cost_usd": one, "request_id": c.request_id}
                    tokens_in, tokens_out, cost = tokens_in + c.tokens_in, tokens_out + c.tokens_out, cost + one
                except LLMError as exc:
                    sample = {"ok": False, "error": str(exc)[:300]}
                sample["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
                samples[value].append(sample)
                done += 1
                _update(investigation_id, done=int(done), cost_usd=round(cost, 8), tokens_in=tokens_in,
                        tokens_out=tokens_out, outcomes=json.dumps({"plan": plan, "variants": distribution(samples)}))
                if ctx is not None:
                    ctx.progress(done, len(values) * n, message=f"{factor}={value}", force=True)
        gateway.flush()
        _update(investigation_id, status=InvestigationStatus.DONE, finished_at=time.time())
    except JobCancelled:
        gateway.flush()
        _update(investigation_id, status=InvestigationStatus.ERROR, error="cancelled before every rerun ran",
                finished_at=time.time())
        raise
    except Exception as exc:  # stored on the row: the page shows why it stopped
        logging.getLogger(__name__).exception("investigation %s stopped: %s", investigation_id, exc)
        _update(investigation_id, status=InvestigationStatus.ERROR, error=str(exc)[:2000], finished_at=time.time())
    return get_investigation(investigation_id)


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", (text or "").strip().lower())[:200]


def distribution(samples: dict[str, list[dict]]) -> dict[str, dict]:
    """Per value: how many reruns answered, how many distinct answers, the most common ones with their share."""
    out = {}
    for value, rows in samples.items():
        ok = [r for r in rows if r["ok"]]
        counts = Counter(_normal(r["text"]) for r in ok)
        examples: dict[str, str] = {}
        for r in ok:
            examples.setdefault(_normal(r["text"]), r["text"][:500])
        lat = sorted(r["latency_ms"] for r in rows)
        out[value] = {
            "runs": len(rows), "ok": len(ok), "errors": len(rows) - len(ok), "distinct": len(counts),
            "top": [{"text": examples[k], "count": c, "share": round(c / len(ok), 4)} for k, c in counts.most_common(5)],
            "errors_seen": sorted({r["error"] for r in rows if not r["ok"]})[:3],
            "tokens_in": sum(r.get("tokens_in", 0) for r in ok), "tokens_out": sum(r.get("tokens_out", 0) for r in ok),
            "cost_usd": round(sum(r.get("cost_usd", 0.0) for r in ok), 8),
            "latency_p50_ms": lat[len(lat) // 2] if lat else None,
        }
    return out


def _update(investigation_id: int, **values) -> None:
    db.update_row(Investigation, investigation_id, updated_at=time.time(), **values)


def get_investigation(investigation_id: int) -> dict:
    with db.session() as s:
        row = s.get(Investigation, investigation_id)
    if row is None:
        raise InvestigationError(f"no investigation {investigation_id}")
    return _as_dict(row)


def list_investigations(request_id: str | None = None, limit: int = 50) -> list[dict]:
    stmt = (select(Investigation).order_by(col(Investigation.created_at).desc(), col(Investigation.id).desc())
            .limit(limit))
    if request_id:
        stmt = stmt.where(Investigation.request_id == request_id)
    with db.session() as s:
        return [_as_dict(r) for r in s.exec(stmt).all()]


def _as_dict(row: Investigation) -> dict:
    d = row.model_dump()
    outcomes = json.loads(d.pop("outcomes") or "{}")
    d["variants"] = json.loads(d["variants"])
    d["plan"] = outcomes.get("plan", {})
    d["outcomes"] = outcomes.get("variants", {})
    if d["status"] in (InvestigationStatus.RUNNING, InvestigationStatus.QUEUED) and \
            time.time() - d["updated_at"] > STALLED_AFTER_S:
        d["status"] = str(InvestigationStatus.STALLED)
    return d


def investigation_to_eval_case(investigation_id: int, suite: str, expected: dict, *, created_by: str,
                               rubric_version: str | None = None) -> int:
    """The investigated call becomes an eval case of `suite`, its notes carrying the hypothesis and the outcome."""
    from core.evals import CaseSource, add_eval_case

    inv = get_investigation(investigation_id)
    if inv["status"] != InvestigationStatus.DONE:
        raise InvestigationError("only a finished investigation can become an eval case")
    if inv["eval_case_id"]:
        return int(inv["eval_case_id"])
    call = logged_call(inv["request_id"])
    summary = "; ".join(f"{v}: {o['distinct']} distinct in {o['ok']}/{o['runs']}"
                        for v, o in inv["outcomes"].items())
    case_id = add_eval_case(suite, call.input_text or "", expected,
                            f"hypothesis: {inv['hypothesis']}\nvaried {inv['factor']}: {summary}",
                            source=CaseSource.INVESTIGATION, source_ref=f"investigation:{investigation_id}",
                            created_by=created_by, rubric_version=rubric_version, labelled_by=created_by)
    _update(investigation_id, eval_case_id=case_id)
    return case_id
