"""The completion engine for one editor session: cache first, then debounce, then one generation at a time.

Order of work for each keystroke (`CompletionSession.open` then `Ticket.events`):
1. validate the state and build the prompt (context frozen per file until the prefix window moves);
2. look up the cache by content hash — and typed-ahead reuse — *before* any debounce (Cody's lesson);
3. cancel every older request of this session that asks for something else (only the latest survives);
4. join a generation already running for exactly this state (e.g. the speculative one after an acceptance);
5. otherwise wait the debounce (adaptive to typing speed), interrupted at once by a newer keystroke;
6. stream the model's tokens through the stop rule (end of line / block) under a time cap; cache the result.
"""

from __future__ import annotations

import logging
import statistics
import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from core.completion._cache import TAIL_CHARS, CacheEntry, SuggestionCache, content_key
from core.completion._clock import MonotonicClock
from core.completion._context import Budget, assemble, language_of
from core.completion._fim import PREFIX_ONLY, ContextChunk
from core.completion._postprocess import StopRule
from core.completion._types import CompletionOptions, EditorState, SuggestionEvent, validate_state
from core.errors import KeelError

_logger = logging.getLogger(__name__)

# A file's frozen context: (files and tabs it was built from, the chunks, the prefix window's start, when built)
_Snapshot = tuple[tuple[tuple[str, ...], tuple[str, ...]], list[ContextChunk], int, float]

DEFAULT_DEBOUNCE_MS = 75.0
MIN_DEBOUNCE_MS = 50.0
MAX_DEBOUNCE_MS = 120.0
TYPING_GAP_S = 1.5  # gaps longer than this are pauses, not typing speed
CONTEXT_MAX_AGE_S = 60.0
# Pause prediction: the share of this user's keystrokes of each kind (after a newline, a space, an opening or
# closing bracket, inside a word) that were followed by a pause of PAUSE_S or more, starting from a prior worth
# PRIOR_WEIGHT keystrokes. Where a pause is likely the model starts at once instead of after the debounce: a
# wasted start costs one cancelled call, a debounce costs every pause its length.
PAUSE_S = 0.3
AWAY_S = 30.0  # a longer gap is the user away, not a pause after that character
PAUSE_PRIOR = {"newline": 0.5, "space": 0.15, "open": 0.1, "close": 0.1, "word": 0.03, "other": 0.05}
PRIOR_WEIGHT = 10.0
START_AT_ONCE_P = 0.1
# Idle warm-up: after this long with nothing to do, the session evaluates the prompt of one other open tab the
# model has not seen yet (then the next), so the first pause after a file switch reuses its KV state instead of
# paying ~2 s for the whole prompt. The next keystroke in any session cancels it at the next 32-token chunk
# (~0.1 s); that keystroke also pays ~20 ms to restore its own file's KV state.
IDLE_WARM_S = 0.5
# Per session, and few: the model keeps 8 files' KV states for all sessions together, and warming many tabs would
# push out the files people are typing in.
MAX_IDLE_WARM_FILES = 3
IDLE_WARM_TRIES = 4  # a file whose warm-ups keystrokes keep cancelling is left cold after this many
IDLE_WARM_RETRIES = 20  # re-checks after another session took the model, until this session's user types again


class ModelActivity:
    """Shared by every session of a service, because they share one model: idle warm-ups start only while no
    session has a request open, and a keystroke in any session cancels them (a real request must never wait
    behind one)."""

    STALE_S = 30.0  # a request open longer than this was abandoned without finishing: it no longer holds warm-ups

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: set[Ticket] = set()
        self.idle_warm_ups: set[Ticket] = set()

    def request_opened(self, ticket: Ticket) -> None:
        with self.lock:
            self._forget_stale(ticket.opened_at)
            self.requests.add(ticket)
            warm_ups, self.idle_warm_ups = list(self.idle_warm_ups), set()
        for warm_up in warm_ups:
            warm_up.supersede()

    def request_closed(self, ticket: Ticket) -> None:
        with self.lock:
            self.requests.discard(ticket)

    def _forget_stale(self, now: float) -> None:
        """A request opened but never run (its client left before reading) would otherwise stay here for good."""
        self.requests = {t for t in self.requests if now - t.opened_at < self.STALE_S}

    def busy_elsewhere(self, session: CompletionSession, now: float) -> bool:
        """Whether another session has a request open (waiting for or using the model)."""
        with self.lock:
            self._forget_stale(now)
            return any(t.session is not session for t in self.requests)

    def start_warm_up(self, ticket: Ticket, now: float) -> bool:
        with self.lock:
            self._forget_stale(now)
            if self.requests:
                return False
            self.idle_warm_ups.add(ticket)
            return True

    def end_warm_up(self, ticket: Ticket) -> None:
        with self.lock:
            self.idle_warm_ups.discard(ticket)


def keystroke_kind(prefix: str) -> str:
    """What the character before the cursor is, for pause prediction."""
    if not prefix:
        return "newline"
    last = prefix[-1]
    line = prefix[prefix.rfind("\n") + 1:]
    if last == "\n" or not line.strip():
        return "newline"
    if last in " \t":
        return "space"
    if last in "([{:=,":
        return "open"
    if last in ")]};":
        return "close"
    if last.isalnum() or last == "_":
        return "word"
    return "other"


@dataclass
class _Generation:
    """One model run that several tickets may read: the leader drives it, followers wait on `cond`."""

    key: str
    visible: str = ""
    final: str | None = None
    finished: bool = False
    status: str = "running"
    speculative: bool = False
    cond: threading.Condition = field(default_factory=threading.Condition)

    def publish(self, visible: str | None = None, *, finished: bool = False, final: str | None = None,
                status: str | None = None) -> None:
        with self.cond:
            if visible is not None:
                self.visible = visible
            if final is not None:
                self.final = final
            if status is not None:
                self.status = status
            self.finished = self.finished or finished
            self.cond.notify_all()


@dataclass
class Outcome:
    """What happened to one suggestion request; logged as telemetry and summed into session stats."""

    id: str
    path: str
    language: str
    status: str = "pending"  # shown | empty | cancelled | superseded | error
    source: str = "model"  # model | exact | typed_ahead | joined | none
    speculative: bool = False
    speculative_hit: bool = False
    perceived_ms: float | None = None
    model_ms: float | None = None
    debounce_ms: float = 0.0
    tokens_out: int = 0
    tokens_in: int = 0
    first_token_ms: float | None = None  # model start -> first streamed text (llama.cpp's prompt_ms, roughly)
    error_status: str | None = None  # the gateway's status of a failed call, e.g. budget_refused
    request_id: str | None = None
    text: str = ""
    error: str | None = None
    accepted: bool = False


class Ticket:
    """One request of the session. Iterate `events()` to run it; `cancel()` from any thread stops it."""

    def __init__(self, session: "CompletionSession", state: EditorState, options: CompletionOptions, *,
                 key: str, prompt, rule: StopRule, suffix_key: str, context_key: str, speculative: bool):
        self.session = session
        self.id = uuid.uuid4().hex
        self.state = state
        self.options = options
        self.key = key
        self.prompt = prompt
        self.rule = rule
        self.suffix_key = suffix_key
        self.context_key = context_key
        self.speculative = speculative
        self.opened_at = session.clock.now()
        self.cancel_event = threading.Event()
        self.cached: CacheEntry | None = None
        self.cached_text: str | None = None
        self.join: _Generation | None = None
        self.debounce_s = 0.0
        self.empty_reason: str | None = None
        self.warm_up = False  # a file-open warm-up: its one token is never shown, joined, cached or accepted
        self.idle = False  # a warm-up the session started by itself while the user was idle
        self.outcome = Outcome(self.id, state.path, language_of(state).name, speculative=speculative)
        self._backend_cancel = None
        self.superseded = False  # cancelled because a newer request took its place (not a client that left)

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def supersede(self) -> None:
        """Cancel it for a newer request: its outcome says "superseded", not "cancelled"."""
        self.superseded = True
        self.cancel()

    def cancel(self) -> None:
        self.cancel_event.set()
        self.session.activity.request_closed(self)  # it will not use the model: nobody need wait for it
        if self._backend_cancel is not None:
            self._backend_cancel()

    def _elapsed_ms(self) -> float:
        return (self.session.clock.now() - self.opened_at) * 1000.0

    def events(self) -> Iterator[SuggestionEvent]:
        """start, then deltas of visible text, then done (with the final suggestion and the outcome)."""
        try:
            yield SuggestionEvent("start", data={"id": self.id, "cached": self.cached_text is not None,
                                                 "source": self.outcome.source,
                                                 "debounce_ms": round(self.debounce_s * 1000, 1)})
            if self.empty_reason:
                self.outcome.status, self.outcome.source = "empty", "none"
            elif self.cached_text is not None:
                self.outcome.perceived_ms = self._elapsed_ms()
                self.outcome.text = self.cached_text
                self.outcome.status = "shown"
                yield SuggestionEvent("delta", self.cached_text)
            elif self.join is not None:
                yield from self._follow(self.join)
            elif self.session.clock.wait(self.cancel_event, self.debounce_s):
                # a newer keystroke arrived during the debounce, or the client left before the model was asked
                self.outcome.status = "superseded" if self.superseded else "cancelled"
            else:
                # while we waited, a speculative or parallel request may have produced or started this very state
                entry = self.session.cache.get(self.key) if self.options.use_cache else None
                running = self.session._running(self.key)
                if entry is not None:
                    self.outcome.source, self.outcome.speculative_hit = "exact", entry.speculative
                    self.outcome.perceived_ms = self._elapsed_ms()
                    self.outcome.text, self.outcome.status = entry.text, "shown"
                    yield SuggestionEvent("delta", entry.text)
                elif running is not None:
                    yield from self._follow(running)
                else:
                    yield from self._generate()
        except GeneratorExit:
            if self.outcome.status == "pending" or self.outcome.status == "running":
                self.outcome.status = "cancelled"
            self.cancel()
            raise
        finally:
            self.session._finish(self)
        yield SuggestionEvent("done", self.outcome.text, data=self.session.describe(self))

    def _follow(self, generation: _Generation) -> Iterator[SuggestionEvent]:
        shown = ""
        self.outcome.source = "joined"
        while True:
            with generation.cond:
                while generation.visible == shown and not generation.finished and not self.cancelled:
                    generation.cond.wait(0.05)
                visible, finished, final, status = (generation.visible, generation.finished, generation.final,
                                                    generation.status)
            if self.cancelled:
                self.outcome.status = "cancelled"
                return
            if visible != shown and visible.startswith(shown):
                if not shown and visible.strip():
                    self.outcome.perceived_ms = self._elapsed_ms()
                yield SuggestionEvent("delta", visible[len(shown):])
                shown = visible
            if finished:
                self.outcome.text = final if final is not None else shown
                self.outcome.status = ("shown" if self.outcome.text else "empty") if status == "ok" else status
                self.outcome.speculative_hit = generation.speculative and status == "ok"
                return

    def _generate(self) -> Iterator[SuggestionEvent]:
        session, options = self.session, self.options
        generation = session._start_generation(self)
        started = session.clock.now()
        shown = ""
        status = "ok"
        extra = {"client": options.client} if options.client else {}
        run = session.backend.stream(self.prompt, max_tokens=options.max_tokens, cache_key=self.state.path,
                                     stop_when=lambda: self.rule.done, user=session.user,
                                     customer=session.customer, task=self.prompt.template, **extra)
        self._backend_cancel = run.cancel
        if self.cancelled:
            run.cancel()
        heal = getattr(self.prompt, "heal", "")
        pending = ""
        try:
            for piece in run:
                if self.cancelled:
                    status = "cancelled"
                    break
                if self.rule.done:
                    break  # the backend ignored stop_when; the gateway's own check ends the run normally
                if self.outcome.first_token_ms is None:
                    self.outcome.first_token_ms = (session.clock.now() - started) * 1000.0
                if heal is not None and heal:
                    pending += piece
                    if len(pending) < len(heal) and heal.startswith(pending):
                        continue  # still inside the indentation the prompt left out
                    common = 0
                    while common < min(len(pending), len(heal)) and pending[common] == heal[common]:
                        common += 1
                    piece, heal = pending[common:], None
                elif heal == "":
                    heal = None
                visible = self.rule.feed(piece)
                elapsed_ms = (session.clock.now() - started) * 1000.0
                if elapsed_ms > options.time_cap_ms:
                    self.rule.cap()  # llama.cpp's t_max_predict_ms: finish the line, then stop
                    visible = self.rule.visible()
                    if elapsed_ms > 2 * options.time_cap_ms:
                        self.rule.done = True
                if visible != shown and visible.startswith(shown):
                    if not shown.strip() and visible.strip() and self.outcome.perceived_ms is None:
                        self.outcome.perceived_ms = self._elapsed_ms()
                    generation.publish(visible)
                    yield SuggestionEvent("delta", visible[len(shown):])
                    shown = visible
                # when the rule is done, the next step of `run` lets the gateway see stop_when and end with "ok"
            if self.cancelled:
                status = "cancelled"
        except GeneratorExit:
            run.cancel()
            run.close()
            self._record_run(run, started, "cancelled", generation)
            raise
        except Exception as exc:  # the backend failed (logged by the gateway); the editor just shows nothing
            if not isinstance(exc, KeelError):  # not a refusal the gateway logged: a bug worth a traceback
                _logger.exception("completion generation failed")
            status = "cancelled" if self.cancelled else "error"
            self.outcome.error = str(exc)[:300]
            self.outcome.error_status = getattr(exc, "status", None)
        finally:
            run.close()
        self._record_run(run, started, status, generation)
        if status == "ok":
            final = self.rule.final()
            self.outcome.text = final
            self.outcome.status = "shown" if final else "empty"
            session._remember(self, final)
            generation.publish(final if final.startswith(shown) else shown, finished=True, final=final, status="ok")
        else:
            self.outcome.status = status

    def _record_run(self, run, started: float, status: str, generation: _Generation) -> None:
        self.outcome.model_ms = (self.session.clock.now() - started) * 1000.0
        self.outcome.tokens_out = getattr(run, "tokens_out", 0)
        self.outcome.tokens_in = getattr(run, "tokens_in", 0)
        self.outcome.request_id = getattr(run, "request_id", None)
        if status != "ok":
            generation.publish(finished=True, status=status)
        self.session._end_generation(generation)


class SessionStats:
    """Counters and perceived latencies of one session, for the playground's live panel."""

    def __init__(self) -> None:
        self.requests = 0
        self.model_requests = 0
        self.cancelled = 0
        self.superseded = 0
        self.cache_hits = 0
        self.typed_ahead_hits = 0
        self.joined = 0
        self.speculative = 0
        self.speculative_hits = 0
        self.shown = 0
        self.accepted = 0
        self.tokens_out = 0
        self.errors = 0
        self.perceived_ms: deque[float] = deque(maxlen=500)
        self.cache_hit_ms: deque[float] = deque(maxlen=500)

    def add(self, o: Outcome) -> None:
        if o.speculative:
            self.speculative += 1
        else:
            self.requests += 1
        if o.model_ms is not None:
            self.model_requests += 1
            self.tokens_out += o.tokens_out
        if o.status == "cancelled":
            self.cancelled += 1
        elif o.status == "superseded":
            self.superseded += 1
        elif o.status == "error":
            self.errors += 1
        if o.speculative:
            return
        if o.source == "exact":
            self.cache_hits += 1
        elif o.source == "typed_ahead":
            self.typed_ahead_hits += 1
        elif o.source == "joined":
            self.joined += 1
        if o.speculative_hit:
            self.speculative_hits += 1
        if o.status == "shown":
            self.shown += 1
            if o.perceived_ms is not None:
                self.perceived_ms.append(o.perceived_ms)
                if o.source in ("exact", "typed_ahead"):
                    self.cache_hit_ms.append(o.perceived_ms)

    def as_dict(self) -> dict:
        data = sorted(self.perceived_ms)

        def pct(p: float):
            if not data:
                return None
            return round(data[min(len(data) - 1, int(round((len(data) - 1) * p)))], 1)

        hits = self.cache_hits + self.typed_ahead_hits
        return {
            "requests": self.requests, "model_requests": self.model_requests, "cancelled": self.cancelled,
            "superseded": self.superseded, "cache_hits": self.cache_hits, "typed_ahead_hits": self.typed_ahead_hits,
            "joined": self.joined, "speculative": self.speculative, "speculative_hits": self.speculative_hits,
            "shown": self.shown, "accepted": self.accepted, "errors": self.errors, "tokens_out": self.tokens_out,
            "cache_hit_rate": round(hits / self.requests, 3) if self.requests else 0.0,
            "acceptance_rate": round(self.accepted / self.shown, 3) if self.shown else 0.0,
            "perceived_p50_ms": pct(0.5), "perceived_p95_ms": pct(0.95),
            "cache_hit_p50_ms": (round(statistics.median(self.cache_hit_ms), 2) if self.cache_hit_ms else None),
        }


class CompletionSession:
    """One editor's completion state: cache, typing rhythm, live requests, context snapshots, stats."""

    def __init__(self, backend, *, clock=None, budget: Budget | None = None, template=None,
                 session_id: str = "", user: str | None = None, customer: str | None = None,
                 telemetry=None, spawn: Callable[[Callable[[], None]], None] | None = None,
                 cache: SuggestionCache | None = None, idle_warm_s: float | None = None,
                 activity: ModelActivity | None = None):
        self.backend = backend
        self.clock = clock or MonotonicClock()
        self.budget = budget or Budget()
        self.template = template or getattr(backend, "template", None) or PREFIX_ONLY
        self.session_id = session_id
        self.user = user
        self.customer = customer
        self.telemetry = telemetry
        self.cache = cache or SuggestionCache(self.clock)
        self.stats = SessionStats()
        self._spawn = spawn or _daemon_thread
        self._lock = threading.Lock()
        self._live: list[Ticket] = []
        self._generations: dict[str, _Generation] = {}
        self._snapshots: dict[str, _Snapshot] = {}
        self._gaps: deque[float] = deque(maxlen=20)
        self._last_keystroke: float | None = None
        self._last_kind: str | None = None
        self._pauses: dict[str, list[int]] = {}  # kind -> [keystrokes, followed by a pause]
        self._recent: OrderedDict[str, Ticket] = OrderedDict()
        self.last_used = self.clock.now()
        # idle warm-ups (off unless the service turns them on): the last real state and what the model has seen
        self.idle_warm_s = idle_warm_s
        self.activity = activity or ModelActivity()
        self._idle_epoch = 0
        self._last_state: EditorState | None = None
        self._last_options: CompletionOptions | None = None
        self._cursors: dict[str, int] = {}
        self._evaluated: set[str] = set()  # files whose prompt the model evaluated in this session
        self._warm_tries: dict[str, int] = {}  # idle warm-ups started per file
        self._idle_retries = 0  # idle re-checks since this session's last keystroke

    # -- typing rhythm ---------------------------------------------------------------------------

    def debounce_ms(self, options: CompletionOptions | None = None) -> float:
        """About half of this user's typical gap between keys, within 50..120 ms; 75 ms until 5 gaps are known."""
        if options is not None and options.debounce_ms is not None:
            return max(0.0, min(float(options.debounce_ms), 2000.0))
        if len(self._gaps) < 5:
            return DEFAULT_DEBOUNCE_MS
        return max(MIN_DEBOUNCE_MS, min(MAX_DEBOUNCE_MS, 0.6 * statistics.median(self._gaps) * 1000.0))

    def _note_keystroke(self, now: float, kind: str | None = None) -> None:
        if self._last_keystroke is not None:
            gap = now - self._last_keystroke
            if 0 < gap < TYPING_GAP_S:
                self._gaps.append(gap)
            if self._last_kind is not None and 0 < gap < AWAY_S:
                counts = self._pauses.setdefault(self._last_kind, [0, 0])
                counts[0] += 1
                counts[1] += gap >= PAUSE_S
        self._last_keystroke = now
        self._last_kind = kind

    def pause_probability(self, kind: str) -> float:
        """How likely this user pauses after a keystroke of this kind, from their own gaps and a prior."""
        seen, paused = self._pauses.get(kind, (0, 0))
        return (paused + PAUSE_PRIOR.get(kind, 0.05) * PRIOR_WEIGHT) / (seen + PRIOR_WEIGHT)

    def debounce_for(self, state: EditorState, options: CompletionOptions) -> float:
        """Milliseconds to wait before the model starts: 0 while no other session waits for the model or where
        this user probably pauses, else the debounce."""
        if options.debounce_ms is None:
            if options.start_when_idle and not self.activity.busy_elsewhere(self, self.clock.now()):
                return 0.0
            if options.predict_pause and self.pause_probability(keystroke_kind(state.prefix)) >= START_AT_ONCE_P:
                return 0.0
        return self.debounce_ms(options)

    # -- requests --------------------------------------------------------------------------------

    def prompt_for(self, state: EditorState):
        """(prompt, assembly, chunks): the context is reused while the prefix window stays where it was."""
        uses_suffix = self.template is not PREFIX_ONLY
        with self._lock:
            previous = self._snapshots.get(state.path)
        assembly = assemble(state, self.budget, uses_suffix=uses_suffix,
                            previous_start=previous[2] if previous is not None else None)
        # The context (other files) is frozen per file: it is rebuilt only when the set of files or tabs changes,
        # or when the prefix window moves (the prompt is re-evaluated from there anyway) and the snapshot is older
        # than CONTEXT_MAX_AGE_S. Edits in other files therefore do not invalidate this file's KV cache per keystroke.
        signature = (tuple(sorted(state.files)), tuple(sorted(state.open_paths)))
        now = self.clock.now()
        with self._lock:  # request threads and idle warm-up timers both build prompts
            snapshot = self._snapshots.get(state.path)
            if snapshot is not None and snapshot[0] == signature and (
                    snapshot[2] == assembly.prefix_start or now - snapshot[3] < CONTEXT_MAX_AGE_S):  # still fresh
                chunks: list[ContextChunk] = snapshot[1]
                self._snapshots[state.path] = (signature, chunks, assembly.prefix_start, snapshot[3])
            else:
                chunks = assembly.chunks
                self._snapshots[state.path] = (signature, chunks, assembly.prefix_start, now)
                if len(self._snapshots) > 64:
                    self._snapshots.pop(next(iter(self._snapshots)))
        prefix = assembly.prefix
        heal = prefix[len(prefix.rstrip(" \t")):] if prefix.rstrip(" \t").endswith("\n") or not prefix.strip() else ""
        # Token healing: a prompt ending in indentation makes small models emit an extra space (" return" after
        # four spaces); the indentation is cut from the prompt and from the start of the model's answer instead.
        prompt = self.template.render(chunks, state.path, prefix[: len(prefix) - len(heal)],
                                      assembly.suffix if uses_suffix else "", language_of(state))
        prompt.heal = heal
        return prompt, assembly, chunks

    def open(self, state: EditorState, options: CompletionOptions | None = None, *,
             speculative: bool = False) -> Ticket:
        """Prepare a request for `state`: validated (CompletionInputError), cache checked, older ones cancelled."""
        options = options or CompletionOptions()
        state = validate_state(state)
        now = self.clock.now()
        self.last_used = now
        if not speculative:
            self._note_keystroke(now, keystroke_kind(state.prefix))
            with self._lock:
                self._idle_epoch += 1  # an idle warm-up scheduled before this keystroke must not start
                self._last_state, self._last_options = state, options
                self._cursors[state.path] = state.cursor
                self._idle_retries = 0
        prompt, assembly, chunks = self.prompt_for(state)
        context_key = content_key(*(f"{c.kind}\0{c.path}\0{c.text}" for c in chunks))
        suffix_key = content_key(assembly.suffix)
        key = content_key(self.template.name, state.path, assembly.prefix, assembly.suffix, context_key)
        rule = StopRule(state.prefix, state.suffix, language_of(state))
        ticket = Ticket(self, state, options, key=key, prompt=prompt, rule=rule, suffix_key=suffix_key,
                        context_key=context_key, speculative=speculative)
        if not speculative:
            self.activity.request_opened(ticket)
        if not state.text.strip():
            ticket.empty_reason = "the file is empty: nothing to complete yet"
        elif options.use_cache:
            entry = self.cache.get(key)
            if entry is not None:
                ticket.cached, ticket.cached_text = entry, entry.text
                ticket.outcome.source, ticket.outcome.speculative_hit = "exact", entry.speculative
            else:
                reuse = self.cache.typed_ahead(state.path, state.text, state.cursor, suffix_key, context_key)
                if reuse is not None:
                    ticket.cached, ticket.cached_text = reuse
                    ticket.outcome.source = "typed_ahead"
        with self._lock:
            if options.cancel_previous:
                for older in self._live:
                    if older.key != key or ticket.cached_text is not None:
                        older.supersede()
            if ticket.cached_text is None and not ticket.empty_reason:
                running = self._generations.get(key)
                if running is not None and not running.finished:
                    ticket.join = running
            self._live.append(ticket)
        if ticket.cached_text is None and ticket.join is None and not ticket.empty_reason and not speculative:
            ticket.debounce_s = self.debounce_for(state, options) / 1000.0
        ticket.outcome.debounce_ms = ticket.debounce_s * 1000.0
        return ticket

    def complete(self, state: EditorState, options: CompletionOptions | None = None) -> dict:
        """Run one request to the end (CLI, tests): the final suggestion and its outcome."""
        ticket = self.open(state, options)
        done: dict | None = None
        for event in ticket.events():
            if event.kind == "done":
                done = event.data
        if done is None:
            raise RuntimeError("the suggestion stream ended without its done event")
        return done

    def warm(self, state: EditorState, options: CompletionOptions | None = None, *, idle: bool = False) -> dict:
        """An editor opened or switched to a file (llama.vscode and llama.vim send `n_predict: 0` then): evaluate
        its prompt now, in the background, so the first pause in it reuses a warm KV state instead of paying for
        the whole prompt. One token only, and nothing cached: a whole suggestion would hold the model ~1 s per
        file. Warm-ups never cancel each other; the next real keystroke cancels one still running (what it
        evaluated so far stays in the file's KV state)."""
        options = replace(options or CompletionOptions(), cancel_previous=False, max_tokens=1, use_cache=False)
        ticket = self.open(state, options, speculative=True)
        if ticket.join is not None or ticket.empty_reason:
            with self._lock:
                if ticket in self._live:
                    self._live.remove(ticket)
            return {"warming": False, "reason": ticket.empty_reason or "already running"}
        # its own key: a real request for the same state must not join a one-token run; it cancels it instead
        ticket.warm_up, ticket.key, ticket.idle = True, f"{ticket.key}|warm-up", idle
        if idle and not self.activity.start_warm_up(ticket, self.clock.now()):  # a request is open: it needs the model
            with self._lock:
                if ticket in self._live:
                    self._live.remove(ticket)
            return {"warming": False, "reason": "a request is open"}
        self._spawn(lambda: _drain(ticket))
        return {"warming": True}

    def accept(self, suggestion_id: str, text: str | None = None) -> dict:
        """The user took a suggestion: count it, mark it in telemetry, and start the next one speculatively."""
        with self._lock:
            ticket = self._recent.get(suggestion_id)
        if ticket is None:
            return {"accepted": False, "reason": "unknown or expired suggestion id"}
        accepted_text = ticket.outcome.text if text is None else text
        if not accepted_text or not ticket.outcome.text.startswith(accepted_text):
            return {"accepted": False, "reason": "the text is not part of that suggestion"}
        if not ticket.outcome.accepted:
            ticket.outcome.accepted = True
            self.stats.accepted += 1
            if self.telemetry is not None:
                self.telemetry.mark_accepted(suggestion_id)
        state = ticket.state
        next_state = EditorState(path=state.path, text=state.prefix + accepted_text + state.suffix,
                                 cursor=state.cursor + len(accepted_text), files=state.files,
                                 open_paths=state.open_paths, recent_paths=state.recent_paths,
                                 language=state.language)
        speculating = bool(ticket.options.speculate)
        if speculating:
            spec = self.open(next_state, ticket.options, speculative=True)
            self._spawn(lambda: _drain(spec))
        return {"accepted": True, "speculating": speculating, "cursor": next_state.cursor}

    # -- bookkeeping -----------------------------------------------------------------------------

    def _running(self, key: str) -> _Generation | None:
        with self._lock:
            running = self._generations.get(key)
            return running if running is not None and not running.finished else None

    def _start_generation(self, ticket: Ticket) -> _Generation:
        with self._lock:
            if not ticket.idle:
                self._evaluated.add(ticket.state.path)
            generation = _Generation(ticket.key, speculative=ticket.speculative)
            self._generations[ticket.key] = generation
            return generation

    def _end_generation(self, generation: _Generation) -> None:
        with self._lock:
            if self._generations.get(generation.key) is generation:
                del self._generations[generation.key]

    def _remember(self, ticket: Ticket, text: str) -> None:
        if not text or not ticket.options.use_cache:
            return
        state = ticket.state
        self.cache.put(ticket.key, CacheEntry(
            text=text, path=state.path, cursor=state.cursor, prefix_tail=state.text[max(0, state.cursor - TAIL_CHARS):
                                                                                    state.cursor],
            suffix_key=ticket.suffix_key, context_key=ticket.context_key, created=self.clock.now(),
            speculative=ticket.speculative))

    def _finish(self, ticket: Ticket) -> None:
        if ticket.outcome.status == "pending":
            ticket.outcome.status = "cancelled" if ticket.cancelled else "empty"
        if ticket.warm_up and ticket.outcome.status == "shown":
            ticket.outcome.status, ticket.outcome.text = "warm-up", ""  # telemetry: not a suggestion anyone saw
        with self._lock:
            if ticket in self._live:
                self._live.remove(ticket)
            if ticket.outcome.status == "shown":
                self._recent[ticket.id] = ticket
                while len(self._recent) > 64:
                    self._recent.popitem(last=False)
        self.stats.add(ticket.outcome)
        if self.telemetry is not None:
            self.telemetry.record(self, ticket.outcome)
        if not ticket.speculative:
            self.activity.request_closed(ticket)
        if ticket.idle:
            self.activity.end_warm_up(ticket)
            if ticket.outcome.status == "error":
                return
            if ticket.outcome.status in ("cancelled", "superseded"):
                # A keystroke took the model. If it was this session's, the epoch moved and the re-check below does
                # nothing (that request's own end schedules the next one); if another session's, try again later.
                self._retry_idle_warm_up()
                return
            with self._lock:
                self._evaluated.add(ticket.state.path)
        self._schedule_idle_warm_up()

    # -- idle warm-ups ---------------------------------------------------------------------------

    def _schedule_idle_warm_up(self) -> None:
        """After a request (or an idle warm-up) ends: if nothing else happens for IDLE_WARM_S, warm a cold file."""
        if (self.idle_warm_s is None or self._last_options is None or not self._last_options.idle_warm
                or not getattr(self.backend, "keeps_prompt_state", True)):
            return
        now = self.clock.now()
        with self._lock:
            if any(not t.speculative and now - t.opened_at < ModelActivity.STALE_S for t in self._live):
                return  # a request of this session is still open (one never run is ignored after STALE_S)
            epoch = self._idle_epoch

        def after_idle() -> None:
            self.clock.wait(threading.Event(), self.idle_warm_s or 0.0)
            if self._idle_epoch == epoch:
                self.warm_idle_file()

        self._spawn(after_idle)

    def _retry_idle_warm_up(self) -> None:
        """Another session had the model: look again later, a bounded number of times."""
        with self._lock:
            if self._idle_retries >= IDLE_WARM_RETRIES:
                return
            self._idle_retries += 1
        self._schedule_idle_warm_up()

    def cold_files(self) -> list[str]:
        """Other open files (recent, then tabs) of the last state whose prompt the model has not evaluated."""
        last = self._last_state
        if last is None:
            return []
        order = [*last.recent_paths, *last.open_paths]
        seen: set[str] = set()
        cold = []
        for path in order:
            if (path in seen or path == last.path or path in self._evaluated or not last.files.get(path, "").strip()
                    or self._warm_tries.get(path, 0) >= IDLE_WARM_TRIES):
                continue
            seen.add(path)
            cold.append(path)
        return cold

    def warm_idle_file(self) -> dict:
        """Evaluate the next cold tab's prompt, as the editor would send it after switching to that file."""
        last, options = self._last_state, self._last_options
        cold = self.cold_files()
        if last is None or options is None or not cold:
            return {"warming": False, "reason": "no cold file"}
        path = cold[0]
        with self._lock:  # counted before the warm-up runs: with an inline spawn it schedules the next one at once
            if path not in self._warm_tries and len(self._warm_tries) >= MAX_IDLE_WARM_FILES:
                return {"warming": False, "reason": f"{MAX_IDLE_WARM_FILES} files warmed already"}
            self._warm_tries[path] = self._warm_tries.get(path, 0) + 1
        text = last.files[path]
        files = {**{p: t for p, t in last.files.items() if p != path}, last.path: last.text}
        others = [p for p in (last.path, *last.open_paths) if p != path]
        state = EditorState(path=path, text=text, cursor=min(self._cursors.get(path, len(text)), len(text)),
                            files=files, open_paths=tuple(dict.fromkeys(others)),
                            recent_paths=tuple(dict.fromkeys(p for p in (last.path, *last.recent_paths) if p != path)),
                            language=None)
        started = self.warm(state, options, idle=True)
        if not started["warming"]:
            with self._lock:  # not a try: nothing was evaluated
                self._warm_tries[path] -= 1
                if not self._warm_tries[path]:
                    del self._warm_tries[path]
            if started.get("reason") == "a request is open":  # another session's request: look again later
                self._retry_idle_warm_up()
        return started

    def describe(self, ticket: Ticket) -> dict:
        o = ticket.outcome
        return {
            "id": o.id, "completion": o.text, "status": o.status, "source": o.source,
            "cached": o.source in ("exact", "typed_ahead"), "speculative_hit": o.speculative_hit,
            "latency_ms": round(o.perceived_ms, 2) if o.perceived_ms is not None else None,
            "model_ms": round(o.model_ms, 1) if o.model_ms is not None else None,
            "debounce_ms": round(o.debounce_ms, 1), "tokens_out": o.tokens_out, "tokens_in": o.tokens_in,
            "first_token_ms": round(o.first_token_ms, 1) if o.first_token_ms is not None else None,
            "error_status": o.error_status, "request_id": o.request_id,
            "template": ticket.prompt.template, "reason": ticket.empty_reason, "error": o.error,
            "stats": self.stats.as_dict(),
        }


def _drain(ticket: Ticket) -> None:
    for _ in ticket.events():
        pass


def _daemon_thread(fn: Callable[[], None]) -> None:
    threading.Thread(target=fn, name="keel-completion-speculate", daemon=True).start()
