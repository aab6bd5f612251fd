"""Scorers: each looks at a case's `expected` and the target's output and returns a score in [0, 1] with a verdict,
or None when the case does not ask for that check (so a suite can mix cases that check different things)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import jsonschema


@dataclass(frozen=True)
class ScoreResult:
    score: float
    passed: bool
    why: str = ""


def _norm(value) -> str:
    return " ".join(str(value).split()).casefold()


def label_accuracy(expected: dict, out, suite) -> ScoreResult | None:
    want = expected.get("label", expected.get("intent"))
    if want is None:
        return None
    got = out.output.get("label", out.output.get("intent"))
    ok = got is not None and str(got).upper() == str(want).upper()
    return ScoreResult(1.0 if ok else 0.0, ok, "" if ok else f"expected {want}, got {got}")


def route_match(expected: dict, out, suite) -> ScoreResult | None:
    want = expected.get("route")
    if want is None:
        return None
    got = out.output.get("route")
    ok = got == want
    return ScoreResult(1.0 if ok else 0.0, ok, "" if ok else f"expected route {want}, got {got}")


def json_valid(expected: dict, out, suite) -> ScoreResult | None:
    """The output is JSON matching the schema the case (or the target) asked for."""
    schema = expected.get("json_schema") or out.output.get("json_schema")
    value = out.output.get("json")
    if schema is None and "json" not in out.output:
        return None
    if value is None:
        return ScoreResult(0.0, False, "no JSON in the output")
    if schema is not None:
        try:
            jsonschema.validate(value, schema)
        except jsonschema.ValidationError as exc:
            return ScoreResult(0.0, False, f"schema: {exc.message[:200]}")
    return ScoreResult(1.0, True)


def contains(expected: dict, out, suite) -> ScoreResult | None:
    """All of `contains` appear (case-insensitive) and none of `not_contains` does; the score is the share met."""
    must = [s for s in expected.get("contains", []) if str(s).strip()]
    must_not = [s for s in expected.get("not_contains", []) if str(s).strip()]
    if not must and not must_not:
        return None
    text = _norm(out.text)
    missing = [s for s in must if _norm(s) not in text]
    present = [s for s in must_not if _norm(s) in text]
    met = len(must) - len(missing) + len(must_not) - len(present)
    score = met / (len(must) + len(must_not))
    why = "; ".join(filter(None, [f"missing {missing}" if missing else None,
                                  f"should not contain {present}" if present else None]))
    return ScoreResult(score, not missing and not present, why)


def regex(expected: dict, out, suite) -> ScoreResult | None:
    pattern = expected.get("regex")
    if not pattern:
        return None
    try:
        ok = re.search(pattern, out.text, flags=re.IGNORECASE | re.MULTILINE) is not None
    except re.error as exc:
        return ScoreResult(0.0, False, f"bad regex in the case: {exc}")
    return ScoreResult(1.0 if ok else 0.0, ok, "" if ok else f"no match for /{pattern}/")


def recall_at_k(expected: dict, out, suite) -> ScoreResult | None:
    """Share of the expected source documents among the top k retrieved (k from the case or suite, default 5)."""
    want = expected.get("sources")
    if not want:
        return None
    k = int(expected.get("k") or suite.options.get("k", 5))
    got = [str(s) for s in out.output.get("sources", [])][:k]
    found = [s for s in want if str(s) in got]
    score = len(found) / len(want)
    return ScoreResult(score, score >= float(expected.get("min_recall", 1.0)) - 1e-9,
                       "" if score == 1 else f"missing from top {k}: {[s for s in want if s not in found]}")


def citation_correctness(expected: dict, out, suite) -> ScoreResult | None:
    """Every cited source was retrieved and is allowed; at least one expected source is cited when any is expected."""
    if "citations" not in out.output:
        return None
    cited = [str(c) for c in out.output.get("citations", [])]
    retrieved = {str(s) for s in out.output.get("sources", [])}
    forbidden = {str(s) for s in expected.get("forbidden_sources", [])}
    bad = [c for c in cited if c not in retrieved or c in forbidden]
    want = {str(s) for s in expected.get("sources", [])}
    hit = not want or bool(want & set(cited))
    correct = (len(cited) - len(bad)) / len(cited) if cited else (1.0 if not want else 0.0)
    ok = not bad and hit
    why = "; ".join(filter(None, [f"cites unretrieved or forbidden {bad}" if bad else None,
                                  None if hit else f"cites none of {sorted(want)}"]))
    return ScoreResult(correct if hit else 0.0, ok, why)


def latency_budget(expected: dict, out, suite) -> ScoreResult | None:
    budget = expected.get("max_latency_ms", suite.max_latency_ms)
    if budget is None:
        return None
    ok = out.latency_ms <= float(budget)
    return ScoreResult(1.0 if ok else 0.0, ok, "" if ok else f"{out.latency_ms:.0f} ms > {float(budget):.0f} ms")


def cost_budget(expected: dict, out, suite) -> ScoreResult | None:
    budget = expected.get("max_cost_usd", suite.max_cost_usd)
    if budget is None:
        return None
    ok = out.cost_usd <= float(budget)
    return ScoreResult(1.0 if ok else 0.0, ok, "" if ok else f"${out.cost_usd:.6f} > ${float(budget):.6f}")


def llm_judge(expected: dict, out, suite) -> ScoreResult | None:
    """A capable model grades the answer against the case's rubric. Only when a capable tier is configured:
    the embedded model is too small to judge, and a judge that guesses is worse than none."""
    rubric = expected.get("rubric")
    if not rubric:
        return None
    from core.evals._targets import capable_judge_available, judge

    if not capable_judge_available():
        return None
    verdict = judge(rubric, out.text)
    return ScoreResult(1.0 if verdict["pass"] else 0.0, bool(verdict["pass"]), str(verdict.get("reason", ""))[:300])


_SEVERITY_ORDER = ("blocker", "major", "minor", "nit")


def review_findings(expected: dict, out, suite) -> ScoreResult | None:
    """PR review: each expected finding (path, line, category, at least min_severity) is among the comments, and
    nothing is worse than `max_severity` (a clean PR gets no blocker or major). Score = share of checks met."""
    wanted = expected.get("findings")
    ceiling = expected.get("max_severity")
    if wanted is None and ceiling is None:
        return None
    got = out.output.get("findings") or []
    rank = {s: i for i, s in enumerate(_SEVERITY_ORDER)}
    checks, missing = 0, []
    for want in wanted or []:
        hit = any(f.get("path") == want["path"] and (f.get("line") == want["line"] or want["line"] in
                                                      (f.get("also_at") or []))
                  and f.get("category") == want["category"]
                  and rank.get(f.get("severity"), 9) <= rank.get(want.get("min_severity", "nit"), 3) for f in got)
        checks += hit
        if not hit:
            missing.append(f"{want['path']}:{want['line']} {want['category']}>={want.get('min_severity', 'nit')}")
    total = len(wanted or [])
    too_severe = []
    if ceiling is not None:
        total += 1
        too_severe = [f"{f.get('path')}:{f.get('line')} {f.get('severity')}" for f in got
                      if rank.get(f.get("severity"), 9) < rank.get(ceiling, 3)]
        checks += not too_severe
    score = checks / total if total else 1.0
    why = "; ".join(([f"missing {', '.join(missing)}"] if missing else []) +
                    ([f"worse than {ceiling}: {', '.join(too_severe)}"] if too_severe else []))
    return ScoreResult(round(score, 4), score == 1.0, why)


def review_bugs(expected: dict, out, suite) -> ScoreResult | None:
    """Real-world review cases: the target matched findings to the expected bugs (tp, fn) and counted the rest (fp).
    Passes with every bug found and no false positive; score = tp / (tp + fn + fp), 1.0 for a clean PR kept clean."""
    if "bugs" not in expected:
        return None
    tp, fn, fp = (int(out.output.get(k) or 0) for k in ("tp", "fn", "fp"))
    total = tp + fn + fp
    score = tp / total if total else 1.0
    why = "; ".join(([f"missed {', '.join(out.output.get('missed') or [])}"] if fn else []) +
                    ([f"false positives {', '.join(out.output.get('false_positives') or [])}"] if fp else []))
    return ScoreResult(round(score, 4), fn == 0 and fp == 0, why)


SCORERS = {
    "label": label_accuracy,
    "route": route_match,
    "json_valid": json_valid,
    "contains": contains,
    "regex": regex,
    "recall_at_k": recall_at_k,
    "citations": citation_correctness,
    "latency": latency_budget,
    "cost": cost_budget,
    "llm_judge": llm_judge,
    "findings": review_findings,
    "review_bugs": review_bugs,
}
