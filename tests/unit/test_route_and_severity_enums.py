"""The support route and the review severity are StrEnums whose values are exactly the strings stored in SQL, in
message meta and eval cases, and served in exports: what the code decides or parses is a member, what it writes
is the plain string, and nothing outside the vocabulary gets in."""

import json

import pytest

from core.review import SEVERITIES, Comment, Severity, at_least, sarif, severity_rank
from core.review._rules import linter_comment
from core.support import ROUTES, Classification, RouteDecision, SupportRoute, plan_route
from core.support._followup import follow_up_decision
from core.tables import ReviewComment, SupportConversation


def _c(label: str, confidence: float = 0.9, *, low=False, note="") -> Classification:
    return Classification(label=label, confidence=confidence, gap=0.8, second="UNKNOWN", low_confidence=low,
                          ambiguous=False, note=note, source="classifier")


def test_route_values_are_the_stored_strings():
    assert [str(r) for r in SupportRoute] == ["faq_answer", "account_tool", "billing_tool", "human", "rephrase"]
    assert ROUTES == tuple(SupportRoute) and ROUTES == ("faq_answer", "account_tool", "billing_tool", "human",
                                                        "rephrase")
    width = SupportConversation.__table__.c.route.type.length
    assert all(len(r) <= width for r in SupportRoute)


@pytest.mark.parametrize("text,classification,route", [
    ("How long does shipping take?", _c("FAQ"), SupportRoute.FAQ_ANSWER),
    ("Where is my order ORD-50012?", _c("ACCOUNT_ACTION"), SupportRoute.ACCOUNT_TOOL),
    ("Show me my invoices", _c("BILLING"), SupportRoute.BILLING_TOOL),
    ("I want a refund", _c("BILLING"), SupportRoute.HUMAN),
    ("Let me talk to a person", _c("FAQ"), SupportRoute.HUMAN),
    ("hmm", _c("UNKNOWN", 0.3, low=True), SupportRoute.REPHRASE),
])
def test_a_route_decided_by_plan_route_is_a_member_and_serialises_as_its_value(text, classification, route):
    decision = plan_route(text, classification=classification)
    assert decision.route is route
    served = decision.as_dict()["route"]
    assert type(served) is str and served == route.value
    assert json.loads(json.dumps(decision.as_dict()))["route"] == route.value


def test_a_follow_up_decision_route_is_a_member():
    decision = follow_up_decision("What is the status of ORD-50013?", _c("UNKNOWN", 0.2, low=True),
                                  {"orders": ["ORD-50013"], "invoices": []})
    assert decision is not None and decision.route is SupportRoute.ACCOUNT_TOOL


def test_a_route_decision_takes_the_stored_string_and_refuses_anything_else():
    decision = RouteDecision(route="human", intent="COMPLAINT", confidence=0.9, reason="stored")
    assert decision.route is SupportRoute.HUMAN
    with pytest.raises(ValueError, match="route must be one of faq_answer, account_tool"):
        RouteDecision(route="escalate", intent="COMPLAINT", confidence=0.9, reason="not a route")


def test_severity_values_are_the_stored_strings_worst_first():
    assert [str(s) for s in Severity] == ["blocker", "major", "minor", "nit"]
    assert SEVERITIES == ("blocker", "major", "minor", "nit")
    assert [severity_rank(s) for s in Severity] == [0, 1, 2, 3] and severity_rank("critical") == 4
    assert at_least(Severity.BLOCKER, Severity.MAJOR) and not at_least(Severity.NIT, "minor")
    width = ReviewComment.__table__.c.severity.type.length
    assert all(len(s) <= width for s in Severity)


def test_copies_that_cannot_import_core_review_spell_the_same_values():
    """`core.evals` imports no feature and `keel review --fail-on` keeps the CLI fast: both spell the values out."""
    import argparse

    from core.cli._review import add_review_command
    from core.evals._scorers import _SEVERITY_ORDER

    assert _SEVERITY_ORDER == SEVERITIES
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    add_review_command(sub, lambda name, fn, help_, sub_: sub_.add_parser(name))
    fail_on = next(a for a in sub.choices["review"]._actions if a.dest == "fail_on")
    assert tuple(fail_on.choices) == SEVERITIES


@pytest.mark.parametrize("answer,expected", [
    ("major", Severity.MAJOR), ("Major", Severity.MAJOR), (" nit ", Severity.NIT), ("BLOCKER", Severity.BLOCKER),
    ("critical", None), ("", None), (None, None), (3, None),
])
def test_a_severity_parsed_from_a_model_answer_is_a_member_or_none(answer, expected):
    assert Severity.parse(answer) is expected


def test_a_comment_holds_a_member_and_refuses_an_unknown_severity():
    comment = Comment(path="a.py", line=3, severity="major", category="correctness", message="m")
    assert comment.severity is Severity.MAJOR
    stored = json.loads(json.dumps(comment.as_dict()))
    assert stored["severity"] == "major" and Comment.from_dict(stored).severity is Severity.MAJOR
    with pytest.raises(ValueError, match="severity must be one of blocker, major, minor, nit, not 'critical'"):
        Comment(path="a.py", line=3, severity="critical", category="correctness", message="m")


@pytest.mark.parametrize("finding,expected", [
    ({"tool": "bandit", "code": "B608", "severity": "MEDIUM", "path": "a.py", "line": 2}, Severity.MAJOR),
    ({"tool": "bandit", "code": "B110", "severity": "HIGH", "path": "a.py", "line": 2}, Severity.MINOR),
    ({"tool": "ruff", "code": "F821", "path": "a.py", "line": 2}, Severity.BLOCKER),
    ({"tool": "ruff", "code": "F401", "path": "a.py", "line": 2}, Severity.NIT),
    ({"tool": "ruff", "code": "Z999", "path": "a.py", "line": 2}, Severity.MINOR),
])
def test_linter_findings_become_members(finding, expected):
    assert linter_comment({"message": "m", **finding}).severity is expected


def test_sarif_serves_the_plain_value():
    class Result:
        comments = [Comment(path="a.py", line=3, severity=Severity.BLOCKER, category="security", message="m",
                            rule="rule:sql-string", fingerprint="f")]

    served = sarif(Result())["runs"][0]["results"][0]
    assert served["level"] == "error"
    assert type(served["properties"]["severity"]) is str and served["properties"]["severity"] == "blocker"
