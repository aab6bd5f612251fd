"""Replay a typing trace through the real HTTP path (`POST /api/complete`) and measure what a user would see.

A trace is JSON lines: {"t_ms", "path", "text", "cursor"} per keystroke (the whole file after it) and
{"t_ms", "accept": true} when the user takes the visible suggestion. Like the playground's editor, the client
sends every keystroke at once and aborts the previous stream (the server debounces, checks its cache first
and cancels); the naive baseline never aborts and asks the server for no debounce, no cache, no cancel.

Perceived latency counts every keystroke followed by a pause of at least 300 ms: from the keystroke to the
first visible (non-blank) character of a suggestion for exactly that state, if it arrives before the next
keystroke; otherwise that pause had no suggestion. The late share counts those pauses except the ones where the
model answered in time with nothing to add (an empty answer); errors and cancellations count as late.

With `warm` (the default) the client first sends the warm-up real editors send on entering a file (llama.vscode's
and llama.vim's `n_predict: 0`) for the file the trace starts in, one keystroke before its first state there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import KeelError

_logger = logging.getLogger(__name__)

PAUSE_MS = 300.0
EMPTY_ANSWER = "model answered nothing visible (empty)"
ENGINE_OPTIONS: dict = {}
NAIVE_OPTIONS = {"debounce_ms": 0, "cache": False, "cancel_previous": False, "speculate": False}


class TraceError(KeelError, ValueError):
    pass


def load_trace(path: str | Path) -> list[dict]:
    """Read and check a trace file; TraceError says which line is wrong."""
    file = Path(path)
    if not file.is_file():
        raise TraceError(f"trace {str(path)!r} does not exist")
    events = []
    last_t = -1
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TraceError(f"trace line {number}: not JSON ({exc.msg})") from None
        if not isinstance(event, dict) or not isinstance(event.get("t_ms"), (int, float)):
            raise TraceError(f"trace line {number}: needs a numeric t_ms")
        if event["t_ms"] < last_t:
            raise TraceError(f"trace line {number}: t_ms goes backwards")
        last_t = event["t_ms"]
        if event.get("accept") is True:
            events.append({"t_ms": float(event["t_ms"]), "accept": True})
            continue
        if not (isinstance(event.get("path"), str) and isinstance(event.get("text"), str)
                and isinstance(event.get("cursor"), int) and 0 <= event["cursor"] <= len(event["text"])):
            raise TraceError(f"trace line {number}: a keystroke needs path, text and a cursor inside the text")
        events.append({"t_ms": float(event["t_ms"]), "path": event["path"], "text": event["text"],
                       "cursor": event["cursor"]})
    if not events:
        raise TraceError("the trace is empty")
    return events


@dataclass
class _Probe:
    index: int
    sent: float
    next_event: float | None  # when the next keystroke comes (None: end of trace)
    accepted_state: bool = False
    first_visible: float | None = None
    done: dict | None = None
    error: str | None = None
    text: str = ""


@dataclass
class ReplayResult:
    mode: str
    keystrokes: int = 0
    accepts: int = 0
    accepts_applied: int = 0
    requests_sent: int = 0
    pauses: int = 0
    pauses_without_suggestion: int = 0
    no_suggestion_reasons: dict = field(default_factory=dict)
    perceived_ms: list[float] = field(default_factory=list)
    late_ms: list[float] = field(default_factory=list)  # pauses: keystroke -> first visible char, even if too late
    cache_hit_ms: list[float] = field(default_factory=list)
    cache_hits: int = 0
    pause_log: list[dict] = field(default_factory=list)  # every pause: what was seen when, and what the server said
    responses: int = 0
    statuses: dict = field(default_factory=dict)
    sources: dict = field(default_factory=dict)
    server_stats: dict = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def slow_pauses(self) -> list[dict]:
        """Pauses answered late (after the next keystroke, or over 250 ms) or not at all."""
        return [p for p in self.pause_log if p["visible_ms"] is None or p["visible_ms"] > 250 or not p["in_time"]]

    def late_pauses(self) -> int:
        """Pauses without a suggestion for any reason but one: the model answered in time with nothing to add."""
        return sum(n for reason, n in self.no_suggestion_reasons.items() if reason != EMPTY_ANSWER)

    def summary(self) -> dict:
        def pct(values, p):
            data = sorted(values)
            if not data:
                return None
            rank = (len(data) - 1) * p / 100
            lo, hi = int(rank), min(len(data) - 1, int(rank) + 1)
            return round(data[lo] + (data[hi] - data[lo]) * (rank - lo), 2)

        return {
            "mode": self.mode, "keystrokes": self.keystrokes, "accepts": self.accepts,
            "accepts_applied": self.accepts_applied, "requests_sent": self.requests_sent, "pauses": self.pauses,
            "pauses_with_suggestion": self.pauses - self.pauses_without_suggestion,
            "no_suggestion_share": round(self.pauses_without_suggestion / self.pauses, 3) if self.pauses else None,
            # the measure: pauses left without a suggestion, except where the model had nothing to add
            "late_share": round(self.late_pauses() / self.pauses, 3) if self.pauses else None,
            "perceived_p50_ms": pct(self.perceived_ms, 50), "perceived_p95_ms": pct(self.perceived_ms, 95),
            "answer_p50_ms": pct(self.late_ms, 50), "answer_p95_ms": pct(self.late_ms, 95),
            "cache_hits": self.cache_hits,
            "cache_hit_rate": round(self.cache_hits / self.responses, 3) if self.responses else 0.0,
            "cache_hit_p50_ms": pct(self.cache_hit_ms, 50), "cache_hit_p95_ms": pct(self.cache_hit_ms, 95),
            "model_requests": self.server_stats.get("model_requests"),
            "cancelled": (self.server_stats.get("cancelled", 0) + self.server_stats.get("superseded", 0)),
            "model_tokens": self.server_stats.get("tokens_out"),
            "speculative": self.server_stats.get("speculative"),
            "speculative_hits": self.server_stats.get("speculative_hits"),
            "no_suggestion_reasons": self.no_suggestion_reasons,
            "slow_pauses": self.slow_pauses()[:40], "pause_log": self.pause_log[:500],
            "statuses": self.statuses, "sources": self.sources, "errors": self.errors[:5], "wall_s": round(self.wall_s, 1),
        }


def _before_keystroke(state: dict) -> tuple[str, int]:
    """The file as the editor opened it: the trace's first state in it with its typed character taken back, so the
    warm-up is for the state before that keystroke, not for the very state the first pause asks about."""
    text, cursor = state["text"], state["cursor"]
    if cursor > 0:
        return text[: cursor - 1] + text[cursor:], cursor - 1
    return text, cursor


async def replay(base_url: str, headers: dict, events: list[dict], *, mode: str = "engine",
                 options: dict | None = None, grace_s: float = 5.0, max_events: int | None = None,
                 log=None, warm: bool = True) -> ReplayResult:
    """Play `events` in real time against `base_url`; `mode` "naive" never aborts and disables the engine.
    `warm`: the editor first warms the file the trace starts in (the warm-up real editors send on entering one)."""
    import httpx

    naive = mode == "naive"
    options = dict(NAIVE_OPTIONS if naive else ENGINE_OPTIONS, **(options or {}))
    session_id = f"replay-{mode}-{uuid.uuid4().hex[:8]}"
    events = events[:max_events] if max_events else events
    result = ReplayResult(mode=mode)
    # an editor has every file of the trace open from the start: each tab holds its file as it was just before the
    # trace's first keystroke in it (with that keystroke's character, a warm-up would see the state it asks about)
    files: dict[str, str] = {}
    for event in events:
        if "path" in event and event["path"] not in files:
            files[event["path"]] = _before_keystroke(event)[0]
    recent: list[str] = []
    probes: list[_Probe] = []
    tasks: list[asyncio.Task] = []
    current: asyncio.Task | None = None
    last_state: dict | None = None
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=httpx.Timeout(60.0, connect=5.0),
                                 limits=limits) as client:
        loop = asyncio.get_running_loop()
        if warm and not naive:
            # what llama.vscode and llama.vim do when the editor enters a file: ask the server to evaluate its
            # prompt. Only the file the trace starts in: the trace does not say when the user entered the others
            # (it starts with their first keystroke), and warming them all at t = 0 held the model for ~2 s each,
            # so the first keystrokes waited behind the warm-ups of files nobody was typing in yet.
            state = next((event for event in events if "path" in event), None)
            if state is not None:
                text, cursor = _before_keystroke(state)
                body = {"path": state["path"], "text": text, "cursor": cursor,
                        "session": session_id, "files": {p: t for p, t in files.items() if p != state["path"]},
                        "open": [p for p in files if p != state["path"]], "options": options, "warm": True}
                response = await client.post("/api/complete", json=body)
                if response.status_code != 200:
                    result.errors.append(f"warm-up HTTP {response.status_code}: {response.text[:200]!r}")
        start = loop.time()

        async def ask(state: dict, probe: _Probe) -> None:
            body = {"path": state["path"], "text": state["text"], "cursor": state["cursor"], "session": session_id,
                    "files": {p: t for p, t in files.items() if p != state["path"]},
                    "open": [p for p in files if p != state["path"]],
                    "recent": [p for p in recent if p != state["path"]][:4], "options": options, "stream": True}
            try:
                async with client.stream("POST", "/api/complete", json=body) as response:
                    if response.status_code != 200:
                        probe.error = f"HTTP {response.status_code}: {(await response.aread())[:200]!r}"
                        return
                    async for line in response.aiter_lines():
                        if not line.startswith("data: "):
                            continue
                        event = json.loads(line[6:])
                        if event["type"] == "delta":
                            probe.text += event["text"]
                            if probe.first_visible is None and probe.text.strip():
                                probe.first_visible = loop.time()
                        elif event["type"] == "done":
                            probe.done = event
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # recorded, the replay goes on
                _logger.exception("replay request for %s failed", state["path"])
                probe.error = f"{type(exc).__name__}: {exc}"

        def launch(state: dict, index: int, next_t: float | None, accepted: bool = False) -> None:
            nonlocal current
            if current is not None and not naive and not current.done():
                current.cancel()  # the editor aborts the stale stream; the server cancels its generation
            probe = _Probe(index, loop.time(), None if next_t is None else start + next_t / 1000.0, accepted)
            probes.append(probe)
            current = asyncio.create_task(ask(state, probe))
            tasks.append(current)
            result.requests_sent += 1

        for index, event in enumerate(events):
            delay = start + event["t_ms"] / 1000.0 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            next_t = events[index + 1]["t_ms"] if index + 1 < len(events) else None
            if event.get("accept"):
                result.accepts += 1
                probe = probes[-1] if probes else None
                if (probe and probe.done and probe.done.get("completion") and last_state is not None
                        and probe.done.get("status") == "shown"):
                    suggestion = probe.done["completion"]
                    response = await client.post("/api/complete", json={"accept": probe.done["id"],
                                                                        "session": session_id})
                    if response.status_code == 200:
                        result.accepts_applied += 1
                    text = last_state["text"]
                    cursor = last_state["cursor"]
                    last_state = {"path": last_state["path"], "text": text[:cursor] + suggestion + text[cursor:],
                                  "cursor": cursor + len(suggestion)}
                    files[last_state["path"]] = last_state["text"]
                    launch(last_state, index, next_t, accepted=True)
                continue
            result.keystrokes += 1
            last_state = event
            files[event["path"]] = event["text"]
            if event["path"] in recent:
                recent.remove(event["path"])
            recent.insert(0, event["path"])
            launch(event, index, next_t)
            if log and result.keystrokes % 100 == 0:
                log(f"[{mode}] {result.keystrokes} keystrokes sent")
        # let the last answers arrive, then give up on whatever is still running
        pending = [t for t in tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=grace_s)
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        result.wall_s = loop.time() - start
        response = await client.post("/api/complete", json={"stats": True, "session": session_id})
        try:
            result.server_stats = response.json().get("stats", {})
        except ValueError:
            pass

    for probe in probes:
        score_probe(result, probe)
    return result


def score_probe(result: ReplayResult, probe: _Probe) -> None:
    """Add one request to the result: its response, and if a pause followed it, what the user saw and when."""
    if probe.error:
        result.errors.append(probe.error)
    if probe.done:
        result.responses += 1
        status, source = probe.done.get("status"), probe.done.get("source")
        result.statuses[status] = result.statuses.get(status, 0) + 1
        result.sources[source] = result.sources.get(source, 0) + 1
        if probe.done.get("cached") and probe.first_visible is not None:
            result.cache_hits += 1
            result.cache_hit_ms.append((probe.first_visible - probe.sent) * 1000.0)
    gap_ms = None if probe.next_event is None else (probe.next_event - probe.sent) * 1000.0
    if gap_ms is not None and gap_ms < PAUSE_MS:
        return
    result.pauses += 1
    shown_ms = None if probe.first_visible is None else (probe.first_visible - probe.sent) * 1000.0
    if shown_ms is not None:
        result.late_ms.append(shown_ms)
    deadline = probe.next_event if probe.next_event is not None else float("inf")
    in_time = probe.first_visible is not None and probe.first_visible <= deadline
    visible_ms = None if shown_ms is None else round(shown_ms, 1)
    done = probe.done or {}
    result.pause_log.append({"event": probe.index, "visible_ms": visible_ms, "gap_ms": gap_ms and round(gap_ms),
                             "in_time": in_time,
                             **{k: done.get(k) for k in ("status", "source", "debounce_ms", "model_ms",
                                                         "first_token_ms", "tokens_in", "tokens_out")}})
    if in_time and shown_ms is not None:
        result.perceived_ms.append(shown_ms)
    else:
        result.pauses_without_suggestion += 1
        if probe.error:
            reason = "error"
        elif probe.done is None:
            reason = "still running when the user typed on"
        elif probe.first_visible is not None:
            reason = "arrived after the user typed on"
        else:
            status = probe.done.get("status")
            reason = EMPTY_ANSWER if status == "empty" else f"model answered nothing visible ({status})"
        result.no_suggestion_reasons[reason] = result.no_suggestion_reasons.get(reason, 0) + 1


class ApiServer:
    """Keel's API routes in a real uvicorn on 127.0.0.1, in a daemon thread (benchmarks, `keel bench`)."""

    def __init__(self, app, port: int | None = None):
        import socket

        import uvicorn

        if port is None:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
        self.port = port
        self.server = uvicorn.Server(uvicorn.Config(app=app, host="127.0.0.1", port=port, lifespan="off",
                                                    log_level="warning", timeout_graceful_shutdown=2))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> ApiServer:
        self._thread = threading.Thread(target=self.server.run, name="keel-bench-api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"uvicorn on 127.0.0.1:{self.port} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self.server.should_exit = True
        self._thread.join(5)
        if self._thread.is_alive():
            self.server.force_exit = True
            self._thread.join(5)
        self._thread = None


def main(argv: list[str] | None = None) -> int:
    """Run one replay and print its summary as JSON: the benchmark runs the client in its own process, like a
    browser, so client and server do not share an interpreter lock."""
    import argparse
    import os
    import sys

    parser = argparse.ArgumentParser(description="replay a typing trace against /api/complete")
    parser.add_argument("--url", required=True)
    parser.add_argument("--trace", required=True)
    parser.add_argument("--mode", choices=("engine", "naive"), default="engine")
    parser.add_argument("--max-events", type=int)
    parser.add_argument("--grace", type=float, default=5.0)
    parser.add_argument("--options", default="{}", help="engine options sent with every request, as JSON")
    parser.add_argument("--no-warm", action="store_true", help="skip the file-open warm-up requests")
    args = parser.parse_args(argv)
    headers = {"Authorization": f"Bearer {os.environ['KEEL_REPLAY_API_KEY']}"}
    result = asyncio.run(replay(args.url, headers, load_trace(args.trace), mode=args.mode,
                                options=json.loads(args.options), max_events=args.max_events, grace_s=args.grace,
                                warm=not args.no_warm,
                                log=lambda m: print(m, file=sys.stderr, flush=True)))
    print(json.dumps(result.summary()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
