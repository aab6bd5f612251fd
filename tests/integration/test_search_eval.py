"""The `search` eval suite's target: retrieval as the case's user, sources in rank order, forbidden sources fail."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.timeout(600)


def test_search_target_returns_ranked_sources_and_fails_on_a_forbidden_one(keel_home):
    from core.evals import EvalTargetError, RunOptions, get_target
    from core.search import audit_log, forget_tables

    forget_tables()
    target = get_target("search.retrieve")
    options = RunOptions(suite="search", settings={"k": 5})
    target.prepare(options)
    case = SimpleNamespace(input="How many unused PTO days carry forward?",
                           fields={"groups": ["all-staff"], "clearance": 1},
                           expected={"sources": ["hr/pto-accrual-guidelines.md"]})
    out = target.run(case, options)
    assert out.output["sources"][0] == "hr/pto-accrual-guidelines.md" and len(out.output["sources"]) == 5
    assert "citations" not in out.output  # retrieval only: the citation scorer does not apply
    # a document the case marks forbidden coming back fails the case with the reason
    case.expected["forbidden_sources"] = ["hr/pto-accrual-guidelines.md"]
    with pytest.raises(EvalTargetError, match="forbidden source"):
        target.run(case, options)
    entries = audit_log(channel="eval")
    assert len(entries) == 2 and entries[0].user == "eval:search"
    forget_tables()
