"""The completion engine with a controllable clock and a scripted backend (a test double: unit tests only)."""

from __future__ import annotations

import os

import pytest

from core.completion._engine import MAX_IDLE_WARM_FILES
from core.completion import (
    PREFIX_ONLY,
    TEMPLATES,
    Budget,
    CompletionInputError,
    CompletionOptions,
    CompletionSession,
    EditorState,
    FakeClock,
    ModelActivity,
    StopRule,
    assemble,
    language_for,
    offset_of,
    prefix_window_start,
    template_for,
)


class FakeRun:
    def __init__(self, backend, pieces, stop_when):
        self.backend, self.pieces, self.stop_when = backend, pieces, stop_when
        self.cancelled = False
        self.closed = False
        self.tokens_out = 0
        self.request_id = f"req-{len(backend.runs)}"

    def __iter__(self):
        for piece in self.pieces:
            if self.cancelled:
                return
            self.backend.clock.advance(self.backend.token_s)
            self.tokens_out += 1
            yield piece
            if self.stop_when():  # as the gateway does after each chunk
                return

    def cancel(self):
        self.cancelled = True

    def close(self):
        self.closed = True


class FakeBackend:
    """Answers every prompt with `answer` split into 3-character tokens, each taking `token_s` of fake time."""

    def __init__(self, clock, answer="total = a + b\n", template=PREFIX_ONLY, token_s=0.01):
        self.clock, self.answer, self.template, self.token_s = clock, answer, template, token_s
        self.runs: list[FakeRun] = []
        self.prompts: list[str] = []
        self.max_tokens: list[int] = []

    def stream(self, prompt, *, max_tokens, cache_key, stop_when, user=None, customer=None, task="fim"):
        answer = self.answer(prompt.text) if callable(self.answer) else self.answer
        run = FakeRun(self, [answer[i:i + 3] for i in range(0, len(answer), 3)], stop_when)
        self.runs.append(run)
        self.prompts.append(prompt.text)
        self.max_tokens.append(max_tokens)
        return run


CODE = "def add(a, b):\n    "


def state(text=CODE, cursor=None, path="src/calc.py", **kw):
    return EditorState(path=path, text=text, cursor=len(text) if cursor is None else cursor, **kw)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def backend(clock):
    return FakeBackend(clock)


@pytest.fixture
def session(clock, backend):
    return CompletionSession(backend, clock=clock, spawn=lambda fn: fn())


def run(ticket):
    events = list(ticket.events())
    return events[-1].data, "".join(e.text for e in events if e.kind == "delta")


# -- debounce ---------------------------------------------------------------------------------------


def test_default_debounce_is_75_ms_and_is_waited_before_the_model(session, clock, backend):
    ticket = session.open(state(), CompletionOptions(predict_pause=False, start_when_idle=False))  # before issue 18
    assert ticket.debounce_s == pytest.approx(0.075)
    done, shown = run(ticket)
    assert clock.waits == [pytest.approx(0.075)]
    assert done["status"] == "shown" and done["completion"] == "total = a + b" and shown == "total = a + b"
    # perceived = debounce + time to the first visible token (one fake token of 10 ms)
    assert done["latency_ms"] == pytest.approx(85.0)


@pytest.mark.parametrize("gap_ms, expected_ms", [(200, 120.0), (150, 90.0), (60, 50.0)])
def test_debounce_adapts_to_typing_speed(session, clock, gap_ms, expected_ms):
    text = CODE
    for i in range(7):
        text += "x"
        ticket = session.open(state(text))
        ticket.cancel()
        clock.advance(gap_ms / 1000)
    assert session.debounce_ms() == pytest.approx(expected_ms)


def test_pauses_do_not_count_as_typing_speed(session, clock):
    for i in range(7):
        session.open(state(CODE + "x" * i)).cancel()
        clock.advance(5.0)
    assert session.debounce_ms() == 75.0


def test_inside_a_word_the_debounce_is_waited_and_after_a_line_end_the_model_starts_at_once(session, clock):
    off = CompletionOptions(start_when_idle=False)  # the model is shared: another session is waiting for it
    assert session.open(state(CODE + "tot"), off).debounce_s == pytest.approx(0.075)  # pauses inside words are rare
    clock.advance(0.1)
    assert session.open(state(CODE), off).debounce_s == 0  # a fresh line: the prior says users pause there


def test_with_no_other_session_waiting_the_model_starts_at_once_even_inside_a_word(clock, backend):
    """A wasted start costs one cancelled chunk; a debounce costs every pause its length."""
    activity = ModelActivity()
    a = CompletionSession(backend, clock=clock, spawn=lambda fn: fn(), activity=activity)
    b = CompletionSession(backend, clock=clock, spawn=lambda fn: fn(), activity=activity)
    first = a.open(state(CODE + "tot"))
    assert first.debounce_s == 0
    clock.advance(0.1)
    again = a.open(state(CODE + "tota"))  # this session's own earlier request does not count: it is cancelled
    assert again.debounce_s == 0 and first.cancelled
    # another session's open request: a keystroke inside a word waits the debounce again, a line end does not
    clock.advance(0.1)
    assert b.open(state(CODE + "tot")).debounce_s == pytest.approx(0.075)
    clock.advance(0.1)
    assert b.open(state(CODE)).debounce_s == 0
    run(again)  # a's request finishes; b's are its own
    clock.advance(0.1)
    assert b.open(state(CODE + "t")).debounce_s == 0
    # a fixed debounce from the client is always honoured
    assert a.open(state(CODE + "x"), CompletionOptions(debounce_ms=40)).debounce_s == pytest.approx(0.04)


def test_pause_prediction_learns_from_this_users_gaps(session, clock):
    """A user who never pauses after a space (and always inside words) gets the debounce after spaces and an
    immediate start inside words, once enough of their own keystrokes outweigh the prior."""
    assert session.pause_probability("space") >= 0.1 and session.pause_probability("word") < 0.1
    text = "x = compute(1)\nvalue"
    for i in range(40):
        text += " "
        session.open(state(text)).cancel()
        clock.advance(0.12)  # a space, then typing on at once
        text += "w"
        session.open(state(text)).cancel()
        clock.advance(0.8)  # inside a word, then a pause
    assert session.pause_probability("space") < 0.1 and session.pause_probability("word") > 0.5
    off = CompletionOptions(start_when_idle=False)
    assert session.open(state(text + "w"), off).debounce_s == 0
    clock.advance(0.1)
    assert session.open(state(text + "w "), off).debounce_s > 0


@pytest.mark.parametrize("prefix, kind", [("", "newline"), ("a\n    ", "newline"), ("x = ", "space"),
                                          ("f(", "open"), ("f(x)", "close"), ("value", "word"), ("a.", "other")])
def test_keystroke_kinds(prefix, kind):
    from core.completion._engine import keystroke_kind

    assert keystroke_kind(prefix) == kind


def test_debounce_setting_overrides_the_adaptive_value(session):
    assert session.open(state(), CompletionOptions(debounce_ms=0)).debounce_s == 0
    assert session.open(state(CODE + "t"), CompletionOptions(debounce_ms=5000)).debounce_s == 2.0


# -- cancellation -----------------------------------------------------------------------------------


def test_a_newer_keystroke_supersedes_a_request_still_in_its_debounce(session, backend):
    first = session.open(state(CODE + "t"))
    second = session.open(state(CODE + "to"))
    assert first.cancelled and not second.cancelled
    done, shown = run(first)
    assert done["status"] == "superseded" and shown == "" and backend.runs == []
    done, _ = run(second)
    assert done["status"] == "shown" and len(backend.runs) == 1


def test_a_client_that_leaves_during_the_debounce_is_cancelled_not_superseded(session, backend):
    """A disconnect (the API cancels the ticket) is not a newer keystroke: telemetry must tell the two apart."""
    ticket = session.open(state(CODE + "t"))
    ticket.cancel()
    done, shown = run(ticket)
    assert done["status"] == "cancelled" and shown == "" and backend.runs == []
    assert session.stats.as_dict()["cancelled"] == 1 and session.stats.as_dict()["superseded"] == 0


def test_a_newer_keystroke_cancels_a_running_generation_between_tokens(session, backend):
    first = session.open(state(CODE + "t"))
    events = first.events()
    assert next(events).kind == "start"
    assert next(events).kind == "delta"  # the model is streaming
    session.open(state(CODE + "to"))
    assert backend.runs[0].cancelled
    rest = list(events)
    assert rest[-1].data["status"] == "cancelled"
    assert session.stats.cancelled == 1


def test_client_disconnect_cancels_the_generation(session, backend):
    ticket = session.open(state())
    events = ticket.events()
    next(events)
    next(events)
    events.close()  # what Starlette does when the client goes away
    assert backend.runs[0].cancelled and backend.runs[0].closed
    assert ticket.outcome.status == "cancelled"


def test_without_cancel_previous_both_requests_run(session, backend):
    options = CompletionOptions(cancel_previous=False, use_cache=False)
    first = session.open(state(CODE + "t"), options)
    second = session.open(state(CODE + "to"), options)
    assert run(first)[0]["status"] == "shown" and run(second)[0]["status"] == "shown"
    assert len(backend.runs) == 2


# -- cache ------------------------------------------------------------------------------------------


def test_cache_is_checked_before_the_debounce(session, clock, backend):
    run(session.open(state()))
    waits = len(clock.waits)
    ticket = session.open(state())
    assert ticket.debounce_s == 0
    done, shown = run(ticket)
    assert done["source"] == "exact" and done["cached"] and shown == "total = a + b"
    assert done["latency_ms"] == 0.0
    assert len(clock.waits) == waits and len(backend.runs) == 1
    assert session.stats.cache_hits == 1


def test_cache_entries_expire(session, clock, backend):
    run(session.open(state()))
    clock.advance(301)
    assert run(session.open(state()))[0]["source"] == "model"
    assert len(backend.runs) == 2


def test_cache_key_covers_suffix_and_context(session, backend):
    run(session.open(state()))
    run(session.open(state(CODE + "\n\nprint(add(1, 2))\n", cursor=len(CODE))))
    run(session.open(state(files={"src/util.py": "def helper():\n    pass\n"}, open_paths=("src/util.py",))))
    assert len(backend.runs) == 3


def test_typed_ahead_reuses_the_rest_of_a_cached_suggestion(session, backend):
    run(session.open(state()))
    done, shown = run(session.open(state(CODE + "tot")))
    assert done["source"] == "typed_ahead" and shown == "al = a + b"
    assert len(backend.runs) == 1
    done, _ = run(session.open(state(CODE + "totx")))
    assert done["source"] == "model" and len(backend.runs) == 2


# -- speculation ------------------------------------------------------------------------------------


def test_accepting_starts_the_next_completion_speculatively(clock):
    answers = iter(["total = a + b\n", "\n    return total\n"])
    backend = FakeBackend(clock, answer=lambda prompt: next(answers))
    session = CompletionSession(backend, clock=clock, spawn=lambda fn: fn())
    done, _ = run(session.open(state()))
    assert session.accept(done["id"])["speculating"]
    assert len(backend.runs) == 2 and backend.prompts[1].endswith(CODE + "total = a + b")
    accepted = CODE + "total = a + b"
    done, shown = run(session.open(state(accepted)))
    assert done["source"] == "exact" and done["speculative_hit"]
    assert shown == "\n    return total"
    stats = session.stats.as_dict()
    assert stats["accepted"] == 1 and stats["speculative"] == 1 and stats["speculative_hits"] == 1
    assert stats["acceptance_rate"] == 0.5


def test_a_request_joins_the_running_speculative_generation(clock):
    backend = FakeBackend(clock, answer="\n    return total\n")
    session = CompletionSession(backend, clock=clock)
    first = session.open(state(), CompletionOptions(use_cache=False))
    done, _ = run(first)
    spec = session.open(state(CODE + "total = a + b"), speculative=True)
    spec_events = spec.events()
    next(spec_events), next(spec_events)  # speculation is streaming
    follower = session.open(state(CODE + "total = a + b"))
    assert follower.join is not None and not spec.cancelled
    follow_events = follower.events()
    assert next(follow_events).kind == "start"
    list(spec_events)
    done = list(follow_events)[-1].data
    assert done["source"] == "joined" and done["completion"] == "\n    return total"
    assert len(backend.runs) == 2


def test_warming_a_file_evaluates_its_prompt_at_once_for_one_token_and_caches_nothing(session, clock, backend):
    """The file-open warm-up (llama.vscode's n_predict 0): no debounce, no keystroke counted, the prompt sent for
    one token (its KV state is what is wanted), and no one-token suggestion left in the cache."""
    assert session.warm(state()) == {"warming": True}
    assert len(backend.runs) == 1 and all(w == 0 for w in clock.waits) and session._last_keystroke is None
    assert backend.max_tokens == [1] and backend.prompts[0].endswith(CODE.rstrip(" "))
    done, shown = run(session.open(state(), CompletionOptions(debounce_ms=0)))  # the first pause: a real answer
    assert done["source"] == "model" and shown == "total = a + b" and len(backend.runs) == 2
    assert session.stats.as_dict()["requests"] == 1  # the warm-up is not a request the user made
    assert session.warm(state(text=""))["warming"] is False and len(backend.runs) == 2  # empty file: nothing


def test_warm_ups_do_not_cancel_each_other_but_a_keystroke_cancels_one_still_running(clock, backend):
    spawned = []
    session = CompletionSession(backend, clock=clock, spawn=spawned.append)
    session.warm(state(path="src/a.py"))
    session.warm(state(path="src/b.py"))
    live = list(session._live)
    assert len(live) == 2 and not any(t.cancelled for t in live)  # both files get their prompt evaluated
    session.open(state(CODE + "t", path="src/a.py"))
    assert all(t.cancelled for t in live)  # typing wins the model over the warm-ups still waiting for it


def test_a_pause_at_the_warmed_state_gets_a_real_suggestion_not_the_warm_ups_one_token(clock, backend):
    session = CompletionSession(backend, clock=clock, spawn=lambda fn: None)  # the test drives the warm-up
    backend.answer = "total = a + b + c + d\n"
    session.warm(state())
    warm = session._live[0]
    warm_events = warm.events()
    assert next(warm_events).kind == "start" and next(warm_events).kind == "delta"  # the warm-up is running
    real = session.open(state(), CompletionOptions(debounce_ms=0))
    assert real.join is None and warm.cancelled  # not joined (its answer is one token long): cancelled
    list(warm_events)
    done, shown = run(real)
    assert done["status"] == "shown" and shown == "total = a + b + c + d" and not done["speculative_hit"]
    assert warm.outcome.status == "cancelled" and warm.id not in session._recent


def test_accept_rejects_unknown_ids_and_foreign_text(session):
    assert session.accept("nope")["accepted"] is False
    done, _ = run(session.open(state()))
    assert session.accept(done["id"], text="rm -rf /")["accepted"] is False
    assert session.accept(done["id"], text="total")["accepted"] is True


# -- stop rule and time cap -------------------------------------------------------------------------


PY = language_for("x.py")
TS = language_for("x.ts")


def feed_all(rule, text):
    for i in range(0, len(text), 2):
        rule.feed(text[i:i + 2])
        if rule.done:
            break
    return rule.final()


def test_mid_line_suggestions_stop_at_the_end_of_the_line_and_drop_the_retyped_suffix():
    rule = StopRule("x = max(a", ")\n", PY)
    assert feed_all(rule, ", b)\nprint(x)\n") == ", b"
    assert rule.done


def test_a_block_opener_takes_the_indented_block_and_stops_at_the_dedent():
    rule = StopRule("def f(x):", "\n", PY)
    assert feed_all(rule, "\n    y = x * 2\n    return y\ndef g():\n    pass\n") == "\n    y = x * 2\n    return y"
    rule = StopRule("function f(x) {", "\n", TS)
    assert feed_all(rule, "\n  return x;\n}\nfunction g() {}\n") == "\n  return x;\n}"


def test_end_of_line_offers_the_rest_of_the_line_or_the_next_line():
    assert feed_all(StopRule("total = ", "", PY), "a + b\nreturn total\n") == "a + b"
    assert feed_all(StopRule("total = a + b", "", PY), "\nreturn total\nmore\n") == "\nreturn total"


def test_time_cap_finishes_the_line_then_stops(clock):
    backend = FakeBackend(clock, answer="\n    a = 1\n    b = 2\n    c = 3\n    d = 4\n", token_s=0.4)
    session = CompletionSession(backend, clock=clock)
    done, _ = run(session.open(state("def f():"), CompletionOptions(time_cap_ms=1000)))
    assert done["status"] == "shown"
    assert done["completion"].count("\n") < 4  # cut well before the whole block
    assert backend.runs[0].tokens_out < 10


# -- templates and context --------------------------------------------------------------------------


def test_template_by_model_family():
    assert template_for("ollama/starcoder2:3b").name == "starcoder"
    assert template_for("vllm/Qwen2.5-Coder-1.5B").name == "qwen2.5-coder"
    assert template_for("x/deepseek-coder-1.3b-base").name == "deepseek-coder"
    assert template_for("x/codellama-7b").name == "codellama"
    assert template_for("embedded/smollm2-135m-instruct") is PREFIX_ONLY
    with pytest.raises(ValueError):
        template_for("x", "nope")


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_fim_templates_put_markers_in_order_and_keep_the_beginning_stable(name):
    template = TEMPLATES[name]
    a = template.render([], "src/calc.py", "def add(a, b):\n    ret", "\n\nprint(add(1, 2))\n", PY)
    b = template.render([], "src/calc.py", "def add(a, b):\n    retu", "\n\nprint(add(1, 2))\n", PY)
    assert a.text[: a.stable_chars] == b.text[: b.stable_chars]
    pre, suf, mid = a.text.index(template.pre), a.text.index(template.suf), a.text.rindex(template.mid)
    if template.spm:  # suffix first: typing only appends at the very end
        assert a.text.index("print(add") < a.text.index("def add") and a.text.endswith("ret")
        assert b.text.startswith(a.text)
    else:
        assert pre < a.text.index("def add") < suf < a.text.index("print(add") < mid
        assert a.text.endswith(template.mid)


def test_qwen_and_starcoder_use_their_repo_level_file_separators():
    from core.completion import ContextChunk

    chunk = [ContextChunk("tab", "src/util.py", "def helper(): ...")]
    assert "<|file_sep|>src/util.py\n" in TEMPLATES["qwen2.5-coder"].render(chunk, "a.py", "x", "", PY).text
    assert "<file_sep>src/util.py\n" in TEMPLATES["starcoder"].render(chunk, "a.py", "x", "", PY).text


def project_state(text="import { add } from './math';\nconst x = ", **kw):
    files = {
        "src/math.ts": "export function add(a: number, b: number): number {\n  return a + b;\n}\n" * 3,
        "src/app.test.ts": "import { run } from './app';\ntest('runs', () => expect(run()).toBe(3));\n",
        "src/notes.ts": "// recently edited notes\n" * 20,
        "src/tab.ts": "export const TAB = 1;\n" * 20,
        "README.md": "# demo\n",
    }
    return EditorState(path="src/app.ts", text=text, cursor=len(text), files=files, open_paths=("src/tab.ts",),
                       recent_paths=("src/notes.ts",), **kw)


def test_context_fills_the_budget_in_priority_order_and_writes_stable_parts_first():
    assembly = assemble(project_state(), Budget(total_tokens=2000), uses_suffix=False)
    kinds = [c.kind for c in assembly.chunks]
    assert kinds == ["tree", "imports", "similar", "tab", "recent"]  # prompt order: most stable first
    assert [c.path for c in assembly.chunks if c.kind == "similar"] == ["src/app.test.ts"]
    imports = next(c for c in assembly.chunks if c.kind == "imports")
    assert imports.path == "src/math.ts" and "return a + b" not in imports.text and "export function add" in imports.text
    assert sum(assembly.tokens.values()) <= 2000


def test_a_small_budget_keeps_the_highest_priorities_and_drops_the_rest():
    assembly = assemble(project_state(), Budget(total_tokens=120, prefix_tokens=40, chunk_tokens=60),
                        uses_suffix=False)
    kinds = [c.kind for c in assembly.chunks]
    assert "recent" in kinds and "tree" not in kinds and "imports" not in kinds
    assert sum(assembly.tokens.values()) <= 120
    assert assembly.dropped


def test_prefix_window_start_moves_rarely_and_on_line_starts():
    text = "".join(f"line {i} = {i}\n" for i in range(400))
    starts = {prefix_window_start(text, cursor, 1000) for cursor in range(3000, 3400)}
    assert len(starts) <= 2
    assert all(s == 0 or text[s - 1] == "\n" for s in starts)


def test_a_prefix_window_that_moved_stays_while_the_text_from_there_fits():
    text = "".join(f"line {i} = {i}\n" for i in range(400))
    moved = prefix_window_start(text, 1010, 1000)
    assert moved > 0 and text[moved - 1] == "\n"
    assert prefix_window_start(text, 990, 1000) == 0  # without memory it would jump back
    assert prefix_window_start(text, 990, 1000, previous=moved) == moved  # an acceptance undone: same window
    assert prefix_window_start(text, moved + 1000, 1000, previous=moved) == moved
    # it moves when it must: the text from there no longer fits, the cursor is above it, or it no longer starts
    # a line (the text before it was edited)
    assert prefix_window_start(text, moved + 1001, 1000, previous=moved) > moved
    assert prefix_window_start(text, moved - 5, 1000, previous=moved) == 0
    assert prefix_window_start(text, 990, 1000, previous=moved + 1) == 0


def test_undoing_an_acceptance_keeps_the_prompt_the_model_already_evaluated(session):
    """An accepted suggestion pushed the window forward; typing the text by hand instead must not move it back
    (the prompt would change from the file's first line, and the model evaluate it all again)."""
    text = "".join(f"value_{i} = compute({i})\n" for i in range(60))
    limit = int(session.budget.prefix_tokens * 3.5)
    text = text[: text.rfind("\n", 0, limit - 10) + 1]  # the prefix just fits the window
    before, _, _ = session.prompt_for(state(text))
    accepted, assembly, _ = session.prompt_for(state(text + "total = sum(values) + offset * 2  # the accepted suggestion\n"))
    assert assembly.prefix_start > 0  # the acceptance moved the window
    undone, assembly_after, _ = session.prompt_for(state(text + "t"))
    assert assembly_after.prefix_start == assembly.prefix_start
    shared = len(os.path.commonprefix([accepted.text, undone.text]))
    assert shared >= len(undone.text) - 40
    assert len(os.path.commonprefix([before.text, undone.text])) < shared


def test_prompt_beginning_survives_typing(session, backend):
    text = "".join(f"value_{i} = compute({i})\n" for i in range(200))
    prompts = []
    for extra in ("r", "re", "res", "resu"):
        ticket = session.open(state(text + extra, files={"src/util.py": "def compute(x):\n    return x\n"},
                                    recent_paths=("src/util.py",)))
        prompts.append(ticket.prompt.text)
        ticket.cancel()
    for a, b in zip(prompts, prompts[1:]):
        assert b.startswith(a)  # prefix-only prompt: each keystroke only appends


# -- bad input --------------------------------------------------------------------------------------


def test_empty_file_answers_without_calling_the_model(session, backend):
    done, _ = run(session.open(state("", 0)))
    assert done["status"] == "empty" and "empty" in done["reason"] and backend.runs == []


@pytest.mark.parametrize("bad, message", [
    (EditorState("a.py", "ab\x00cd", 2), "binary"),
    (EditorState("a.py", "abc", 10), "outside the file"),
    (EditorState("a.py", "abc", -1), "outside the file"),
    (EditorState("", "abc", 1), "path"),
    (EditorState("a.py", "abc", "1"), "integer"),
])
def test_bad_states_are_refused_with_a_clear_message(session, bad, message):
    with pytest.raises(CompletionInputError, match=message):
        session.open(bad)


def test_a_1_mb_file_completes_from_a_bounded_window(session, backend):
    text = "x = 1\n" * 180_000  # ~1 MB
    done, _ = run(session.open(state(text, cursor=len(text) // 2)))
    assert done["status"] == "shown"
    assert len(backend.prompts[0]) < 3000


def test_unknown_language_is_completed_as_plain_text(session, backend):
    done, _ = run(session.open(state("some words here ", path="notes.weird")))
    assert done["status"] == "shown" and backend.prompts[0].startswith("# File: notes.weird")


def test_offset_of_line_and_column():
    assert offset_of("ab\ncd", 2, 2) == 4
    with pytest.raises(CompletionInputError, match="line 3"):
        offset_of("ab\ncd", 3, 1)
    with pytest.raises(CompletionInputError, match="column 9"):
        offset_of("ab\ncd", 1, 9)


def test_indentation_is_healed_out_of_the_prompt_and_the_answer(clock):
    backend = FakeBackend(clock, answer="    return a + b\n")
    session = CompletionSession(backend, clock=clock)
    done, shown = run(session.open(state("def add(a, b):\n    ")))
    assert backend.prompts[0].endswith("def add(a, b):\n")
    assert done["completion"] == "return a + b" and shown == "return a + b"


def test_context_stays_frozen_while_other_files_change_until_the_window_moves_and_ages(session, clock):
    files = {"src/util.py": "def helper():\n    pass\n"}
    first = session.open(state(files=files, open_paths=("src/util.py",)))
    first.cancel()
    edited = {"src/util.py": "def helper():\n    return 42\n"}
    second = session.open(state(CODE + "t", files=edited, open_paths=("src/util.py",)))
    second.cancel()
    assert second.prompt.text.startswith(first.prompt.text)  # same head: the KV cache stays valid
    assert "return 42" not in second.prompt.text
    long_text = "".join(f"line_{i} = {i}\n" for i in range(400))
    clock.advance(61)
    third = session.open(state(long_text, files=edited, open_paths=("src/util.py",)))
    third.cancel()
    assert "return 42" in third.prompt.text  # window moved and the snapshot was old: context rebuilt


def test_after_the_debounce_a_request_uses_what_speculation_produced_meanwhile(clock):
    backend = FakeBackend(clock, answer="\n    return total\n")
    session = CompletionSession(backend, clock=clock, spawn=lambda fn: fn())
    accepted_state = state(CODE + "total = a + b")
    # the editor asked before the server heard about the acceptance
    waiting = session.open(accepted_state, CompletionOptions(start_when_idle=False))
    assert waiting.debounce_s > 0
    spec = session.open(accepted_state, speculative=True)
    list(spec.events())  # the speculative generation finishes during the debounce
    done, shown = run(waiting)
    assert done["source"] == "exact" and done["speculative_hit"] and shown == "\n    return total"
    assert len(backend.runs) == 1


def test_hostile_paths_and_huge_lines_stay_harmless(session, backend):
    ticket = session.open(state(path="a.py\n# File: evil.py\x00"))
    ticket.cancel()
    headers = [line for line in ticket.prompt.text.split("\n") if line.startswith("# File:")]
    assert headers == ["# File: a.py# File: evil.py"]  # the newline could not forge a second header
    import time as _time

    from core.completion._languages import language_for as lang, signatures

    started = _time.perf_counter()
    signatures("int " + "a " * 50_000 + "x(" + "b" * 1000, lang("x.c"))
    assert _time.perf_counter() - started < 1.0  # no catastrophic backtracking on a hostile line


# -- idle warm-ups of the other open files ----------------------------------------------------------------

B_PY = "def double(x):\n    return 2 * x\n\n\n"
C_PY = "def halve(x):\n    return x / 2\n\n\n"


def with_tabs(**kw):
    return state(files={"src/b.py": B_PY, "src/c.py": C_PY}, open_paths=("src/b.py", "src/c.py"), **kw)


def test_an_idle_session_warms_the_other_open_files_one_at_a_time_and_the_switch_reuses_that_prompt(clock, backend):
    """After IDLE_WARM_S with nothing to do, each open file the model has not seen gets its prompt evaluated for
    one token; the first request after switching to it asks for a prompt that starts with the warmed one."""
    session = CompletionSession(backend, clock=clock, spawn=lambda fn: fn(), idle_warm_s=0.5)
    done, _ = run(session.open(with_tabs(), CompletionOptions(debounce_ms=0)))
    assert done["status"] == "shown"
    assert backend.max_tokens == [48, 1, 1]  # the suggestion, then one warm-up per other open file
    warmed_b, warmed_c = backend.prompts[1], backend.prompts[2]
    assert warmed_b.endswith(f"# File: src/b.py\n{B_PY}") and warmed_c.endswith(f"# File: src/c.py\n{C_PY}")
    assert 0.5 in clock.waits and session.stats.as_dict()["requests"] == 1  # warm-ups are not user requests
    assert session.cold_files() == []
    # the user switches to b.py and types at its end: the prompt extends the warmed one (same context, same prefix)
    switched = EditorState(path="src/b.py", text=B_PY + "d", cursor=len(B_PY) + 1, files={"src/calc.py": CODE,
                           "src/c.py": C_PY}, open_paths=("src/c.py", "src/calc.py"), recent_paths=("src/calc.py",))
    run(session.open(switched, CompletionOptions(debounce_ms=0)))
    shared = len(os.path.commonprefix([warmed_b, backend.prompts[3]]))
    assert shared >= len(warmed_b) - len("\n\n\n")  # the healed indentation aside, all of it is reused
    assert len(backend.runs) == 4  # nothing new was cold: no further warm-up


def test_a_keystroke_in_any_session_cancels_an_idle_warm_up_and_none_starts_while_a_request_is_open(clock, backend):
    activity = ModelActivity()
    spawned: list = []
    a = CompletionSession(backend, clock=clock, spawn=spawned.append, idle_warm_s=0.5, activity=activity)
    b = CompletionSession(backend, clock=clock, spawn=lambda fn: None, idle_warm_s=0.5, activity=activity)
    run(a.open(with_tabs(), CompletionOptions(debounce_ms=0)))
    spawned.pop()()  # the idle timer fires: a warm-up of src/b.py is started (and waits for the model)
    warm = next(t for t in a._live if t.idle)
    assert warm.state.path == "src/b.py" and not warm.cancelled
    theirs = b.open(state(CODE + "x", path="other.py"), CompletionOptions(debounce_ms=0))  # another user types
    assert warm.cancelled
    assert a.warm_idle_file() == {"warming": False, "reason": "a request is open"}  # b's request is still open
    assert a._warm_tries == {"src/b.py": 1}  # the refusal was not a try
    list(warm.events())
    assert warm.outcome.status in ("cancelled", "superseded") and "src/b.py" in a.cold_files()
    timers = [fn for fn in spawned if fn.__name__ == "after_idle"]
    assert len(timers) == 2  # a re-check after the refusal and one after the cancelled warm-up
    run(theirs)  # b's request ends: the model is free again
    timers[-1]()  # a's re-check fires: its user has not typed, so b.py is warmed after all
    again = next(t for t in a._live if t.idle)
    assert again.state.path == "src/b.py" and not again.cancelled and a._warm_tries == {"src/b.py": 2}


def test_a_session_warms_at_most_a_few_tabs_because_the_model_keeps_few_kv_states(clock, backend):
    tabs = {f"src/t{i}.py": f"def f{i}(x):\n    return x + {i}\n" for i in range(5)}
    session = CompletionSession(backend, clock=clock, spawn=lambda fn: fn(), idle_warm_s=0.5)
    run(session.open(state(files=tabs, open_paths=tuple(tabs)), CompletionOptions(debounce_ms=0)))
    assert backend.max_tokens == [48] + [1] * MAX_IDLE_WARM_FILES  # not all five
    assert len(session.cold_files()) == 5 - MAX_IDLE_WARM_FILES
    assert session.warm_idle_file() == {"warming": False, "reason": f"{MAX_IDLE_WARM_FILES} files warmed already"}


def test_a_keystroke_during_the_idle_wait_or_idle_warm_false_means_no_warm_up(clock, backend):
    spawned: list = []
    session = CompletionSession(backend, clock=clock, spawn=spawned.append, idle_warm_s=0.5)
    run(session.open(with_tabs(), CompletionOptions(debounce_ms=0)))
    timer = spawned.pop()
    session.open(with_tabs(text=CODE + "r"), CompletionOptions(debounce_ms=0))  # typing went on
    timer()
    assert len(backend.runs) == 1 and not any(t.idle for t in session._live)
    off = CompletionSession(backend, clock=clock, spawn=spawned.append, idle_warm_s=0.5)
    spawned.clear()
    run(off.open(with_tabs(), CompletionOptions(debounce_ms=0, idle_warm=False)))
    assert spawned == []  # the client asked for none
    direct = CompletionSession(backend, clock=clock, spawn=spawned.append)
    run(direct.open(with_tabs(), CompletionOptions(debounce_ms=0)))
    assert spawned == []  # sessions built without idle_warm_s (unit tests, CLI) never warm by themselves
    backend.keeps_prompt_state = False  # a remote provider: a warm-up would be a paid call that leaves nothing
    remote = CompletionSession(backend, clock=clock, spawn=spawned.append, idle_warm_s=0.5)
    run(remote.open(with_tabs(), CompletionOptions(debounce_ms=0)))
    assert spawned == []


def test_the_gateway_backend_says_whether_its_model_keeps_prompt_state_between_calls():
    from core.completion import GatewayBackend

    class Local:
        def kv_stats(self):
            return {}

    class Gateway:
        providers = {"embedded": Local(), "openai": object()}

        def __init__(self, target):
            self.target = target

        def targets(self, request):
            return [self.target]

    assert GatewayBackend(Gateway("embedded/smollm2-135m-instruct")).keeps_prompt_state is True
    assert GatewayBackend(Gateway("openai/gpt-4o-mini")).keeps_prompt_state is False
    assert GatewayBackend(Gateway("missing/model")).keeps_prompt_state is False
