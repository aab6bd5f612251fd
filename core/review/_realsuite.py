"""The real-world recall suite: PRs of the same shape as real bug-fix commits in public Python projects, reversed so
the PR reintroduces the bug (each written here, nothing copied; data/review/real/SOURCES.md names the commits), and
clean PRs to count false positives. Each case is a tiny repository at its base and at its head plus the PR's diff.

A finding counts when it is minor or worse; it is a hit when its path and category match an expected bug and its
line (or one of its collapsed `also_at` lines) falls in the bug's span, otherwise a false positive.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from core.config import REPO_ROOT
from core.review._comments import Severity, severity_rank
from core.review._errors import ReviewError

REAL_DIR = REPO_ROOT / "data" / "review" / "real"
COUNTED = Severity.MINOR  # nits are not findings a reviewer acts on


@dataclass(frozen=True)
class RealCase:
    id: str
    bug_class: str
    source: str
    bugs: tuple[dict, ...]

    @property
    def dir(self) -> Path:
        return REAL_DIR / self.id

    @property
    def diff(self) -> str:
        return (self.dir / "pr.diff").read_text(encoding="utf-8")

    def repo(self, checkout: str) -> Path:
        if checkout not in ("base", "head"):
            raise ReviewError(f"checkout must be base or head, not {checkout!r}")
        return self.dir / checkout


def real_cases() -> list[RealCase]:
    cases = []
    for line in (REAL_DIR / "cases.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            cases.append(RealCase(row["id"], row["bug_class"], row.get("source", ""),
                                  tuple(row["expected"]["bugs"])))
    return cases


def get_real_case(case_id: str) -> RealCase:
    for case in real_cases():
        if case.id == case_id:
            return case
    raise ReviewError(f"no real-suite case {case_id!r}")


def bug_spans(case: RealCase) -> list[dict]:
    """Each expected bug as {path, start, end, category}: its span's first and last snippet found in the head file
    (the n-th occurrence of the first snippet with `occurrence`), so the data names code, not line numbers."""
    spans = []
    for bug in case.bugs:
        lines = (case.dir / "head" / bug["path"]).read_text(encoding="utf-8").splitlines()
        first, last = bug["span"]
        hits = [i for i, text in enumerate(lines, 1) if first in text]
        if len(hits) < bug.get("occurrence", 1):
            raise ReviewError(f"{case.id}: {first!r} is not in {bug['path']}")
        start = hits[bug.get("occurrence", 1) - 1]
        end = next((i for i, text in enumerate(lines, 1) if i >= start and last in text), start)
        spans.append({"path": bug["path"], "start": start, "end": end, "category": bug["category"]})
    return spans


def match(spans: list[dict], findings: list[dict]) -> dict:
    """tp / fn per expected bug, fp per counted finding that matches no bug."""
    counted = [f for f in findings if severity_rank(f.get("severity", Severity.NIT)) <= severity_rank(COUNTED)]
    hit = [False] * len(spans)
    false_positives = []
    for f in counted:
        lines = {f.get("line")} | set(f.get("also_at") or [])
        matched = [i for i, s in enumerate(spans) if f.get("path") == s["path"] and f.get("category") == s["category"]
                   and any(s["start"] <= n <= s["end"] for n in lines if isinstance(n, int))]
        for i in matched:
            hit[i] = True
        if not matched:
            false_positives.append(f"{f.get('path')}:{f.get('line')} {f.get('category')} {f.get('rule')}")
    missed = [f"{s['path']}:{s['start']}-{s['end']} {s['category']}" for s, h in zip(spans, hit, strict=True) if not h]
    return {"tp": sum(hit), "fn": len(missed), "fp": len(false_positives), "missed": missed,
            "false_positives": false_positives}


def metrics(rows: list[dict]) -> dict[str, dict]:
    """Recall, precision and false positives per bug class (and "all") from rows of {bug_class, tp, fn, fp}."""
    table: dict[str, dict] = {}
    for row in rows:
        for key in (row["bug_class"], "all"):
            t = table.setdefault(key, {"cases": 0, "tp": 0, "fn": 0, "fp": 0})
            t["cases"] += 1
            for k in ("tp", "fn", "fp"):
                t[k] += row[k]
    for t in table.values():
        t["recall"] = t["tp"] / (t["tp"] + t["fn"]) if t["tp"] + t["fn"] else None
        t["precision"] = t["tp"] / (t["tp"] + t["fp"]) if t["tp"] + t["fp"] else None
    return dict(sorted(table.items(), key=lambda kv: (kv[0] == "all", kv[0])))


def review_real_case(case: RealCase, checkout: str = "head", options=None) -> tuple[dict, object]:
    """Review one case with the repository at `checkout`; returns (match counts, the ReviewResult)."""
    from core.review import ReviewOptions, review_diff

    options = options or ReviewOptions(use_llm=False, use_cache=False, apply_dismissals=False, user="eval")
    result = review_diff(case.diff, case.repo(checkout), options)
    findings = [{"path": c.path, "line": c.line, "also_at": c.also_at, "category": c.category,
                 "severity": str(c.severity), "rule": c.rule} for c in result.comments]
    counts = match(bug_spans(case), findings)
    return {"bug_class": case.bug_class, **counts, "findings": findings, "notices": result.notices}, result
