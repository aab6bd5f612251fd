"""The review eval hook: the `findings` scorer, the dataset kept in step with the sample PRs, and the suites."""

from __future__ import annotations

import json
import tomllib
from types import SimpleNamespace

from core.config import REPO_ROOT
from core.evals import SCORERS, get_target
from core.review import sample_prs

DATASET = REPO_ROOT / "data" / "evals" / "review_findings.jsonl"


def out(*findings):
    return SimpleNamespace(output={"findings": [dict(zip(("path", "line", "category", "severity"), f, strict=True))
                                                for f in findings]})


def test_findings_scorer_checks_place_category_and_severity():
    score = SCORERS["findings"]
    want = {"findings": [{"path": "a.py", "line": 3, "category": "security", "min_severity": "major"}]}
    assert score(want, out(("a.py", 3, "security", "blocker")), None).passed
    assert not score(want, out(("a.py", 3, "security", "minor")), None).passed  # not severe enough
    assert not score(want, out(("a.py", 4, "security", "blocker")), None).passed  # wrong line
    miss = score(want, out(("a.py", 3, "quality", "blocker")), None)
    assert miss.score == 0 and "missing a.py:3 security>=major" in miss.why
    moved = SimpleNamespace(output={"findings": [{"path": "a.py", "line": 1, "also_at": [3], "category": "security",
                                                  "severity": "major"}]})
    assert score(want, moved, None).passed  # a collapsed duplicate still counts at its other line
    clean = {"findings": [], "max_severity": "minor"}
    assert score(clean, out(("a.py", 1, "quality", "nit")), None).passed
    bad = score(clean, out(("a.py", 1, "correctness", "major")), None)
    assert not bad.passed and "worse than minor" in bad.why
    assert score({"contains": ["x"]}, out(), None) is None


def test_dataset_matches_the_sample_prs():
    rows = [json.loads(line) for line in DATASET.read_text().splitlines()]
    assert [r["id"] for r in rows] == [p.id for p in sample_prs()]
    for row, pr in zip(rows, sample_prs(), strict=True):
        assert row["input"] == pr.diff
        assert len(row["expected"]["findings"]) == len(pr.expected)
        assert ("max_severity" in row["expected"]) == pr.clean


def test_suites_are_registered():
    suites = tomllib.loads((REPO_ROOT / "data" / "evals" / "suites.toml").read_text())
    assert suites["review-findings"]["target"] == suites["review-findings-tools"]["target"] == "review.findings"
    assert suites["review-findings-tools"]["fast"] is True and suites["review-findings"]["uses_model"] is True
    assert type(get_target("review.findings")).__name__ == "ReviewFindings"
