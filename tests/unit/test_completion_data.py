"""The shipped completion data: the typing trace, its loader, the demo project and the eval cases."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import pytest

from core.completion import CompletionSession, EditorState, FakeClock
from core.completion._replay import TraceError, load_trace
from tests.unit.test_completion_engine import FakeBackend

DATA = Path(__file__).resolve().parents[2] / "data"


def test_the_trace_has_500_keystrokes_over_three_files_with_realistic_intervals():
    events = load_trace(DATA / "completion" / "trace.jsonl")
    keys = [e for e in events if "path" in e]
    assert len(keys) >= 500
    assert len({e["path"] for e in keys}) == 3
    assert sum(1 for e in events if e.get("accept")) >= 5
    gaps = [b["t_ms"] - a["t_ms"] for a, b in zip(events, events[1:])]
    assert 80 <= statistics.median(gaps) <= 250
    assert sum(1 for g in gaps if g >= 300) >= 30  # pauses where a suggestion matters
    for a, b in zip(keys, keys[1:]):
        if a["path"] == b["path"]:  # one keystroke changes the text a little
            assert abs(len(b["text"]) - len(a["text"])) <= 20


@pytest.mark.parametrize("content, message", [
    ("", "empty"),
    ("{not json\n", "not JSON"),
    ('{"t_ms": 5, "path": "a", "text": "x", "cursor": 1}\n{"t_ms": 2, "accept": true}\n', "backwards"),
    ('{"t_ms": 5, "path": "a", "text": "x", "cursor": 9}\n', "cursor inside"),
    ('{"path": "a", "text": "x", "cursor": 1}\n', "t_ms"),
])
def test_bad_traces_are_refused_with_the_line(tmp_path, content, message):
    trace = tmp_path / "t.jsonl"
    trace.write_text(content)
    with pytest.raises(TraceError, match=message):
        load_trace(trace)


def test_a_missing_trace_is_refused(tmp_path):
    with pytest.raises(TraceError, match="does not exist"):
        load_trace(tmp_path / "nope.jsonl")


def test_eval_cases_are_well_formed_and_each_builds_a_prompt():
    clock = FakeClock()
    session = CompletionSession(FakeBackend(clock), clock=clock)
    lines = (DATA / "evals" / "completion.jsonl").read_text().splitlines()
    assert len(lines) >= 10
    ids = set()
    for line in lines:
        case = json.loads(line)
        # the eval pipeline's case shape: the prefix is the input, the middle is checked by contains or regex
        assert {"id", "path", "input", "suffix", "expected"} <= set(case) and case["id"] not in ids
        ids.add(case["id"])
        assert ("contains" in case["expected"]) != ("regex" in case["expected"])
        if "regex" in case["expected"]:
            re.compile(case["expected"]["regex"])
        state = EditorState(case["path"], case["input"] + case["suffix"], len(case["input"]))
        prompt, _, _ = session.prompt_for(state)
        assert prompt.text.endswith(case["input"].rstrip(" \t")) or prompt.text.endswith(case["input"])


def test_demo_project_has_files_in_two_languages():
    files = [p for p in (DATA / "completion" / "project").rglob("*") if p.is_file()]
    assert {p.suffix for p in files} >= {".py", ".ts"}


def test_the_replay_warms_the_state_before_the_first_keystroke_and_counts_late_pauses_apart_from_empty_ones():
    from core.completion._replay import EMPTY_ANSWER, ReplayResult, _before_keystroke

    assert _before_keystroke({"text": "def f(x):\n    ret", "cursor": 17}) == ("def f(x):\n    re", 16)
    assert _before_keystroke({"text": "x = 1\nprint(x)", "cursor": 6}) == ("x = 1print(x)", 5)
    assert _before_keystroke({"text": "abc", "cursor": 0}) == ("abc", 0)
    result = ReplayResult(mode="engine", pauses=20, pauses_without_suggestion=4,
                          no_suggestion_reasons={EMPTY_ANSWER: 2, "still running when the user typed on": 1,
                                                 "model answered nothing visible (error)": 1})
    summary = result.summary()
    assert summary["no_suggestion_share"] == 0.2 and summary["late_share"] == 0.1  # an error is not "nothing to add"


def test_each_pause_is_scored_by_what_the_user_saw_before_typing_on():
    from core.completion._replay import EMPTY_ANSWER, ReplayResult, _Probe, score_probe

    result = ReplayResult(mode="engine")
    shown = {"status": "shown", "source": "model", "model_ms": 40.0}
    probes = [
        _Probe(0, sent=0.0, next_event=0.1, first_visible=0.05, done=shown),  # typing on: not a pause
        _Probe(1, sent=1.0, next_event=1.5, first_visible=1.06, done=shown),  # 60 ms, in time
        _Probe(2, sent=2.0, next_event=2.4, first_visible=2.3, done=shown),  # 300 ms: in time but slow
        _Probe(3, sent=3.0, next_event=3.4, first_visible=3.5, done=shown),  # after the next keystroke
        _Probe(4, sent=4.0, next_event=4.6, done={"status": "empty", "source": "model"}),  # nothing to add
        _Probe(5, sent=5.0, next_event=5.5),  # still running
        _Probe(6, sent=6.0, next_event=None, error="HTTP 500: b'boom'"),  # the last one, failed
    ]
    for probe in probes:
        score_probe(result, probe)
    assert result.pauses == 6 and result.responses == 5 and result.errors == ["HTTP 500: b'boom'"]
    assert [round(ms) for ms in result.perceived_ms] == [60, 300]
    assert [round(ms) for ms in result.late_ms] == [60, 300, 500]
    assert result.no_suggestion_reasons == {"arrived after the user typed on": 1, EMPTY_ANSWER: 1,
                                            "still running when the user typed on": 1, "error": 1}
    assert [p["event"] for p in result.pause_log] == [1, 2, 3, 4, 5, 6]
    assert [p["event"] for p in result.slow_pauses()] == [2, 3, 4, 5, 6]
    assert result.pause_log[0] == {"event": 1, "visible_ms": 60.0, "gap_ms": 500, "in_time": True,
                                   "status": "shown", "source": "model", "debounce_ms": None, "model_ms": 40.0,
                                   "first_token_ms": None, "tokens_in": None, "tokens_out": None}
    summary = result.summary()
    assert summary["late_share"] == round(3 / 6, 3) and summary["no_suggestion_share"] == round(4 / 6, 3)
    assert [p["event"] for p in summary["slow_pauses"]] == [2, 3, 4, 5, 6]
