"""What the mypy clean-up of core.evals changed on purpose: a suite without a target string gets a clear error, an
unsaved row's missing id is said plainly, and the scorers' explanations read as before (only the typing changed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.evals import SCORERS, EvalError, Suite, TargetOutput, load_suites
from core.evals._runner import saved_id

SUITE = Suite(name="t", feature="f", description="", target="llm.chat", dataset=Path("x.jsonl"), scorers=())


def out(text: str = "", **output) -> TargetOutput:
    return TargetOutput(output=output, text=text, latency_ms=1.0)


@pytest.mark.parametrize("target_line", ["", "target = 3\n", 'target = ["llm.chat"]\n'])
def test_a_suite_without_a_target_string_names_the_problem(tmp_path, target_line):
    suites = tmp_path / "s.toml"
    suites.write_text(f'[x]\n{target_line}scorers = ["contains"]\nmin_score = 0.5\n')
    with pytest.raises(EvalError, match=r"suite x needs a target \(a string such as \"llm.chat\"\)"):
        load_suites(suites)


def test_saved_id_refuses_a_row_that_was_never_saved():
    assert saved_id(7) == 7
    with pytest.raises(EvalError, match="never saved"):
        saved_id(None)


def test_contains_explains_what_is_missing_and_what_should_not_be_there():
    both = SCORERS["contains"]({"contains": ["Paris"], "not_contains": ["London"]}, out("london calling"), SUITE)
    assert both.why == "missing ['Paris']; should not contain ['London']" and not both.passed
    only_missing = SCORERS["contains"]({"contains": ["Paris"], "not_contains": ["London"]}, out("rome"), SUITE)
    assert only_missing.why == "missing ['Paris']"
    assert SCORERS["contains"]({"contains": ["Paris"]}, out("paris"), SUITE).why == ""


def test_citation_correctness_explains_bad_and_missing_citations():
    score = SCORERS["citations"]
    bad = score({"sources": ["a"]}, out(sources=["b"], citations=["b", "x"]), SUITE)
    assert bad.why == "cites unretrieved or forbidden ['x']; cites none of ['a']" and not bad.passed
    assert score({"sources": ["a"]}, out(sources=["a"], citations=["a"]), SUITE).why == ""
