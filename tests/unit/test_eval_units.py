"""Eval scorers, suite files, the logged-input parser, review sampling and prompt-version lookup, without a database."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from core.llm._rollup import review_samples, sampled_for_review
from core.evals import (
    SCORERS, EvalError, EvalTargetError, Suite, TargetOutput, load_suites, parse_logged_input, resolve_prompt,
)
from core.evals._runner import _verdict, segment_table

SUITE = Suite(name="t", feature="f", description="", target="llm.chat", dataset=Path("x.jsonl"), scorers=(),
              max_latency_ms=100, max_cost_usd=0.001, options={"k": 3})


def out(text="", latency=10.0, cost=0.0, **output):
    return TargetOutput(output=output, text=text, latency_ms=latency, cost_usd=cost)


def score(name, expected, output):
    return SCORERS[name](expected, output, SUITE)


def test_label_and_route_scorers():
    assert score("label", {"label": "BILLING"}, out(label="billing")).passed
    wrong = score("label", {"label": "BILLING"}, out(label="FAQ"))
    assert not wrong.passed and wrong.why == "expected BILLING, got FAQ"
    assert score("label", {"route": "human"}, out(label="FAQ")) is None  # not asked: not scored
    assert score("route", {"route": "human"}, out(route="human")).score == 1.0
    assert not score("route", {"route": "human"}, out(route="faq_answer")).passed


def test_contains_scores_the_share_met_case_insensitively():
    r = score("contains", {"contains": ["Paris", "France"], "not_contains": ["London"]}, out("paris is nice"))
    assert r.score == pytest.approx(2 / 3) and not r.passed and "missing ['France']" in r.why
    assert score("contains", {"contains": ["  "]}, out("x")) is None
    assert score("contains", {"not_contains": ["PWNED"]}, out("all fine")).passed


def test_regex_scorer_reports_a_bad_pattern_instead_of_crashing():
    assert score("regex", {"regex": r"\bblue\b"}, out("The sky is Blue.")).passed
    bad = score("regex", {"regex": "([unclosed"}, out("x"))
    assert not bad.passed and bad.why.startswith("bad regex in the case")


def test_json_valid_checks_the_schema():
    schema = {"type": "object", "properties": {"items": {"type": "array"}}, "required": ["items"]}
    assert score("json_valid", {}, out(json={"items": []}, json_schema=schema)).passed
    r = score("json_valid", {}, out(json={"nope": 1}, json_schema=schema))
    assert not r.passed and "schema" in r.why
    assert not score("json_valid", {}, out(json=None, json_schema=schema)).passed
    assert score("json_valid", {}, out(text="plain")) is None


def test_retrieval_recall_and_citation_correctness():
    r = score("recall_at_k", {"sources": ["a", "b"]}, out(sources=["a", "x", "y", "b"]))
    assert r.score == 0.5 and not r.passed and "missing from top 3" in r.why  # k = 3 from the suite options
    assert score("recall_at_k", {"sources": ["a", "b"], "min_recall": 0.5}, out(sources=["a"])).passed
    good = score("citations", {"sources": ["a"]}, out(sources=["a", "b"], citations=["a"]))
    assert good.passed and good.score == 1.0
    unretrieved = score("citations", {"sources": ["a"]}, out(sources=["a"], citations=["a", "secret"]))
    assert not unretrieved.passed and unretrieved.score == 0.5 and "secret" in unretrieved.why
    forbidden = score("citations", {"forbidden_sources": ["hr/salaries"]},
                      out(sources=["hr/salaries"], citations=["hr/salaries"]))
    assert not forbidden.passed
    assert score("citations", {}, out(sources=["a"])) is None


def test_latency_and_cost_budgets_from_case_or_suite():
    assert score("latency", {}, out(latency=99)).passed
    assert not score("latency", {}, out(latency=101)).passed
    assert score("latency", {"max_latency_ms": 500}, out(latency=300)).passed
    assert not score("cost", {}, out(cost=0.002)).passed


def test_llm_judge_is_skipped_without_a_capable_remote_tier(monkeypatch, tmp_path):
    from core import config

    monkeypatch.setenv("KEEL_HOME", str(tmp_path))
    for name in ("KEEL_TIERS", "KEEL_PROVIDERS", "KEEL_OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    config.reset_settings()
    try:
        assert score("llm_judge", {"rubric": "mentions Paris"}, out("Paris")) is None  # embedded: no judge
    finally:
        config.reset_settings()


def test_verdict_floor_tolerance_and_baseline():
    suite = Suite(name="s", feature="f", description="", target="llm.chat", dataset=Path("x"), scorers=(),
                  tolerance=0.05, min_score=0.5)
    assert _verdict(suite, 0.4, None, 0)[0] == "failed"
    assert _verdict(suite, 0.8, {"score": 0.84}, 1)[0] == "passed"  # a 4-point drop is inside 5
    status, message = _verdict(suite, 0.7, {"score": 0.8}, 2)
    assert status == "failed" and "dropped 10.0%" in message and "2 case(s) regressed" in message
    assert _verdict(suite, None, None, 0)[0] == "error"


def test_segment_table_counts_by_segment_and_source():
    rows = [{"segment": "a", "source": "dataset", "passed": True}, {"segment": "a", "source": "dataset", "passed": False},
            {"segment": "collected: review_queue", "source": "review_queue", "passed": True}]
    table = segment_table(rows)
    assert table["a"] == {"n": 2, "passed": 1, "source": "dataset", "score": 0.5}
    assert table["collected: review_queue"]["source"] == "review_queue"


def test_the_repo_suites_file_is_valid_and_names_real_datasets():
    suites = load_suites()
    assert {"support-intents", "support-routes", "workspace-action-items", "llm-replays"} <= set(suites)
    for suite in suites.values():
        assert suite.dataset.is_file(), suite.dataset
    assert suites["support-intents"].where == {"split": "test"} and suites["support-intents"].min_score == 0.86
    assert [path.name for path in suites["support-intents"].extra_datasets.values()] == [
        "external_test.jsonl", "external_test_2.jsonl", "external_test_3.jsonl", "external_test_4.jsonl",
        "external_test_5.jsonl", "external_test_6.jsonl", "external_test_7.jsonl",
        "external_test_8.jsonl", "external_test_9.jsonl"]


def test_suite_file_errors_name_the_problem(tmp_path):
    bad = tmp_path / "s.toml"
    bad.write_text('[x]\ntarget = "nope"\n')
    with pytest.raises(EvalError, match="unknown target 'nope'"):
        load_suites(bad)
    bad.write_text('[x]\ntarget = "llm.chat"\nscorers = ["vibes"]\n')
    with pytest.raises(EvalError, match=r"unknown scorers \['vibes'\]"):
        load_suites(bad)
    bad.write_text("[x\n")
    with pytest.raises(EvalError, match="not valid TOML"):
        load_suites(bad)
    with pytest.raises(EvalError, match="no eval suites file"):
        load_suites(tmp_path / "missing.toml")


def test_a_suite_without_a_floor_is_refused_with_a_clear_error(tmp_path):
    bad = tmp_path / "s.toml"
    bad.write_text('[drifty]\ntarget = "llm.chat"\nscorers = ["contains"]\ntolerance = 0.2\n')
    with pytest.raises(EvalError, match="suite drifty has no floor: set min_score"):
        load_suites(bad)
    for floor in ('"high"', "1.5", "-0.1", "true"):
        bad.write_text(f'[drifty]\ntarget = "llm.chat"\nscorers = ["contains"]\nmin_score = {floor}\n')
        with pytest.raises(EvalError, match="suite drifty: min_score must be a number from 0 to 1"):
            load_suites(bad)
    bad.write_text('[ok]\ntarget = "llm.chat"\nscorers = ["contains"]\nmin_score = 0.5\ntolerance = 2\n')
    with pytest.raises(EvalError, match="suite ok: tolerance must be a number from 0 to 1"):
        load_suites(bad)


def test_every_repo_suite_has_a_floor_a_little_below_its_checked_in_baseline():
    from core.evals._runner import baseline_file, load_run_file

    for suite in load_suites().values():
        assert suite.min_score is not None and 0 < suite.min_score <= 1, suite.name
        if baseline_file(suite.name).is_file():
            score = load_run_file(baseline_file(suite.name))["score"]
            # today's baseline passes its floor, and the floor is no lower than 20 points (or one tolerance) below it
            assert score - max(0.2, suite.tolerance) <= suite.min_score <= score, (suite.name, suite.min_score, score)


def test_parse_logged_input_round_trips_the_log_rendering():
    text = "[system] Be brief.\n\n[user] line one\n\nline two with [user] inside\n\n[assistant] ok"
    assert parse_logged_input(text) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "line one\n\nline two with [user] inside"},
        {"role": "assistant", "content": "ok"},
    ]
    assert parse_logged_input("no roles here") == []


def test_review_sampling_is_deterministic_and_close_to_the_share():
    ids = [f"req-{i}" for i in range(20_000)]
    picked = [i for i in ids if sampled_for_review(i, 0.05)]
    assert 0.045 < len(picked) / len(ids) < 0.055
    assert picked == [i for i in ids if sampled_for_review(i, 0.05)]
    assert not any(sampled_for_review(i, 0.0) for i in ids[:100])
    base = dict(created_at=1.0, model="m", prompt_version=None, output_text="x")
    rows = [dict(base, request_id="a", status="error", feature="support"),
            dict(base, request_id="b", status="ok", feature="eval"),
            dict(base, request_id="c", status="ok", feature="support", output_text=None),
            dict(base, request_id="d", status="fallback", feature="support")]
    assert [s["request_id"] for s in review_samples(rows, 1.0)] == ["d"]  # answered, kept, not eval traffic


def test_prompt_versions_current_candidate_file_and_git_history(tmp_path):
    current = resolve_prompt("workspace/explain", None)
    assert resolve_prompt("workspace/explain", current.version) is current
    candidate = tmp_path / "explain.md"
    candidate.write_text("---\ntier: fast\n---\n## user\nExplain: {text}\n")
    tried = resolve_prompt("workspace/explain", str(candidate))
    assert tried.tier == "fast" and tried.version != current.version
    with pytest.raises(EvalTargetError, match="has no version deadbeef"):
        resolve_prompt("workspace/explain", "deadbeef")
    with pytest.raises(EvalTargetError, match="neither a version hash nor a prompt file path"):
        resolve_prompt("workspace/explain", "'; DROP TABLE x; --")
    with pytest.raises(EvalTargetError, match="does not exist"):
        resolve_prompt("workspace/explain", "../../etc/nothing.md")


def test_an_earlier_prompt_version_is_found_in_git_history(tmp_path):
    from core.prompts import parse

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    path = tmp_path / "prompts" / "workspace" / "explain.md"
    path.parent.mkdir(parents=True)
    git("init", "-q")
    old_text = "---\ntier: capable\n---\n## user\nOld wording: {text}\n"
    path.write_text(old_text)
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "v1")
    path.write_text("---\ntier: capable\n---\n## user\nNew wording: {text}\n")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "v2")
    old = parse("workspace/explain", old_text)
    found = resolve_prompt("workspace/explain", old.version[:8], repo=tmp_path)
    assert found.template == "Old wording: {text}" and found.version == old.version
