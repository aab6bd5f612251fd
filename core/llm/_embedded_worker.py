"""The embedded llama.cpp model, run in its own process so a native crash never takes the web process down.

Run as a script (`python _embedded_worker.py FD`): it imports no Keel package, only the standard library, numpy
and llama_cpp, so it starts fast and the web process never loads llama.cpp. It talks to its supervisor
(`core.llm._embedded.EmbeddedProvider`) over one socket with pickled tuples:

    supervisor → worker: ("load", config) · ("run", id, request) · ("cancel", id) · ("count", id, text)
                         · ("kv_clear", id) · ("quit",)
    worker → supervisor: ("ready", info) · ("fatal", message) · ("start", id, tokens_in) · ("delta", id, text)
                         · ("done", id, usage, kv_stats) · ("error", id, message) · ("reply", id, value)

One request runs at a time (the supervisor serialises them); a reader thread turns ("cancel", id) into a flag
that generation checks between tokens and between prompt chunks, so a cancelled request frees the model within
one token. `EmbeddedEngine` is the model logic itself; the benchmark also runs it in-process to measure what
the process boundary costs.
"""

from __future__ import annotations

import ctypes
import os
import queue
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, TypedDict, cast

if TYPE_CHECKING:  # for annotations only: the worker imports llama_cpp lazily, and nothing from Keel
    from llama_cpp.llama_types import ChatCompletionStreamResponseDelta, CreateChatCompletionStreamResponse

EVAL_CHUNK = 32  # prompt tokens per llama.cpp decode: ~0.1 s on 2 cores, the longest a cancel waits


class Usage(TypedDict):
    """What a request used, sent back in ("done", id, usage, kv_stats)."""

    tokens_in: int
    tokens_out: int
    finish_reason: str | None


class _ServeState(TypedDict):
    """Shared by the reader thread and the run loop (under their lock): request ids are the supervisor's."""

    current: int | None
    queued: set[int]
    cancelled: set[int]


class RequestRejected(Exception):
    """The model refused this request (e.g. it does not fit the context); the worker itself is fine."""


def _common_prefix(a, b) -> int:
    import numpy as np

    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.nonzero(np.asarray(a[:n]) != np.asarray(b[:n]))[0]
    return int(diff[0]) if len(diff) else n


class KVSlots:
    """KV states of the model kept per cache key (e.g. per edited file), LRU within a byte budget.

    The context holds one key's tokens at a time (`active`). Switching keys saves the active sequence's KV
    cells (llama_state_seq_get_data: ~20 MB for 750 tokens, ~20 ms) and restores the new key's, so going back
    to a file costs a copy instead of re-evaluating its whole prompt at ~280 tokens/s."""

    def __init__(self, max_slots: int = 8, max_bytes: int = 384 * 1024 * 1024, min_tokens: int = 48):
        self.max_slots, self.max_bytes, self.min_tokens = max_slots, max_bytes, min_tokens
        self.active: str | None = None
        self._slots: OrderedDict[str, tuple] = OrderedDict()  # key -> (tokens, state bytes)
        self.saves = self.loads = 0
        self.tokens_reused = self.tokens_evaluated = 0

    @property
    def keys(self) -> list[str]:
        return list(self._slots)

    def stats(self) -> dict:
        return {"active": self.active, "slots": len(self._slots), "saves": self.saves, "loads": self.loads,
                "bytes": sum(len(v[1]) for v in self._slots.values()),
                "tokens_reused": self.tokens_reused, "tokens_evaluated": self.tokens_evaluated}

    def clear(self, llama=None) -> None:
        """Forget every saved state (and the context's, when given): the next prompt is evaluated cold."""
        self._slots.clear()
        self.active = None
        if llama is not None:
            llama._ctx.kv_cache_seq_rm(-1, 0, -1)
            llama.n_tokens = 0

    def leave(self, llama) -> None:
        """Keep the active key's state before something else overwrites the context."""
        if self.active is not None:
            self._save(llama, self.active)
            self.active = None

    def prepare(self, llama, key: str | None, tokens: list[int]) -> int:
        """Make the context start with the longest available prefix of `tokens`; return how many are reused."""
        import llama_cpp

        current = llama.input_ids[: llama.n_tokens]
        reuse = _common_prefix(current, tokens)
        if key is not None and key != self.active:
            saved = self._slots.get(key)
            saved_reuse = _common_prefix(saved[0], tokens) if saved is not None else 0
            if self.active is not None and reuse < llama.n_tokens:
                self._save(llama, self.active)
            if saved is not None and saved_reuse > reuse:
                state_tokens, data = saved
                llama._ctx.kv_cache_seq_rm(-1, 0, -1)
                buffer = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
                if llama_cpp.llama_state_seq_set_data(llama.ctx, buffer, len(data), 0) == len(data):
                    llama.input_ids[: len(state_tokens)] = state_tokens
                    llama.n_tokens = len(state_tokens)
                    reuse = saved_reuse
                    self.loads += 1
                    self._slots.move_to_end(key)
                else:  # could not restore: start clean rather than trust a half-written cache
                    llama._ctx.kv_cache_seq_rm(-1, 0, -1)
                    llama.n_tokens = 0
                    reuse = 0
            self.active = key
        elif key is None:
            self.active = None
        reuse = min(reuse, len(tokens) - 1)  # generate() re-evaluates the last token to get fresh logits
        llama._ctx.kv_cache_seq_rm(-1, reuse, -1)
        llama.n_tokens = reuse
        llama._requires_eval = True
        return reuse

    def _save(self, llama, key: str) -> None:
        import llama_cpp

        n = llama.n_tokens
        if n < self.min_tokens:
            return
        size = llama_cpp.llama_state_seq_get_size(llama.ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(llama.ctx, buffer, size, 0)
        if not written:
            return
        self._slots[key] = (llama.input_ids[:n].copy(), ctypes.string_at(buffer, written))
        self._slots.move_to_end(key)
        self.saves += 1
        while len(self._slots) > self.max_slots or (
                len(self._slots) > 1 and sum(len(v[1]) for v in self._slots.values()) > self.max_bytes):
            self._slots.popitem(last=False)


class EmbeddedEngine:
    """One llama.cpp model and its per-key KV states. Not thread-safe: one request at a time."""

    def __init__(self, model_path: str, n_ctx: int, n_threads: int, n_batch: int = 256):
        from llama_cpp import Llama

        if not os.path.isfile(model_path):
            raise FileNotFoundError(f"model file not found: {model_path}")
        self.llama = Llama(model_path=model_path, n_ctx=n_ctx, n_threads=n_threads, n_batch=n_batch,
                           verbose=False)
        self.kv = KVSlots()
        self._warm_up()

    def _warm_up(self) -> None:
        """The first decode pages the weights in and builds the compute graph (seconds on a busy machine);
        do it at load time, so no request waits for it. Two tokens, not one: a one-token batch takes another
        code path in ggml and would not catch a build that faults on real prompts."""
        llama = self.llama
        try:
            llama.eval([llama.token_bos(), *llama.tokenize(b"Hello", add_bos=False)[:3]])
        finally:
            llama._ctx.kv_cache_seq_rm(-1, 0, -1)
            llama.n_tokens = 0

    @staticmethod
    def system_info() -> str:
        import llama_cpp

        return llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip()

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8", "replace"), add_bos=True))

    def n_ctx(self) -> int:
        return self.llama.n_ctx()

    def run(self, request: dict, cancelled, on_start=None) -> Generator[str, None, Usage]:
        """Yield text deltas for a chat (`messages`) or raw (`prompt`) request; returns the usage dict.

        `cancelled()` is checked between tokens; `on_start(tokens_in)` is called once the prompt is counted."""
        usage: Usage = {"tokens_in": 0, "tokens_out": 0, "finish_reason": None}
        if request.get("prompt") is not None:
            yield from self._run_raw(request, usage, cancelled, on_start)
            return usage
        llama = self.llama
        self.kv.leave(llama)  # a chat call overwrites the context: keep the completion state first
        kwargs = dict(messages=request["messages"], max_tokens=request["max_tokens"],
                      temperature=request["temperature"], stop=request.get("stop"), stream=True)
        if request.get("json_schema") is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": request["json_schema"]}
        text = "\n".join(m.get("content", "") for m in request["messages"])
        usage["tokens_in"] = (len(llama.tokenize(text.encode("utf-8", "replace"), add_bos=True))
                              + 4 * len(request["messages"]))
        if on_start:
            on_start(usage["tokens_in"])
        try:
            # stream=True: llama_cpp returns the chunk iterator (its return type also allows the whole response)
            chunks = cast("Iterator[CreateChatCompletionStreamResponse]", llama.create_chat_completion(**kwargs))
            for chunk in chunks:
                if cancelled():
                    break
                choice = chunk["choices"][0]
                # the empty delta type has no keys at all, so reading it as a delta gives content None, as it should
                delta = cast("ChatCompletionStreamResponseDelta", choice.get("delta", {}))
                piece = delta.get("content") or ""
                if choice.get("finish_reason"):
                    usage["finish_reason"] = choice["finish_reason"]
                if piece:
                    usage["tokens_out"] += 1
                    yield piece
        except ValueError as exc:  # e.g. prompt longer than the context window
            raise RequestRejected(f"embedded model rejected the request: {exc}") from exc
        return usage

    def _run_raw(self, request: dict, usage: Usage, cancelled, on_start) -> Generator[str, None, None]:
        """A raw text completion that reuses the KV cache: the longest common token prefix with what the context
        holds, or with the state saved for `cache_key` (one per edited file). The prompt is evaluated in small
        chunks and generation checks `cancelled` between tokens, so a stale request frees the model fast."""
        llama = self.llama
        max_tokens = request["max_tokens"]
        tokens = llama.tokenize(request["prompt"].encode("utf-8", "replace"), add_bos=True, special=False)
        n_ctx = llama.n_ctx()
        if len(tokens) + max_tokens >= n_ctx:
            raise RequestRejected(f"the prompt is {len(tokens)} tokens; with max_tokens {max_tokens} it does "
                                  f"not fit the {n_ctx}-token context")
        usage["tokens_in"] = len(tokens)
        if on_start:
            on_start(len(tokens))
        reused = self.kv.prepare(llama, request.get("cache_key"), tokens)
        self.kv.tokens_reused += reused
        for start in range(reused, len(tokens) - 1, EVAL_CHUNK):
            if cancelled():
                return
            chunk = tokens[start: min(start + EVAL_CHUNK, len(tokens) - 1)]
            llama.eval(chunk)
            self.kv.tokens_evaluated += len(chunk)
        if cancelled():
            return
        self.kv.tokens_evaluated += 1
        eos = llama.token_eos()
        stops = [s for s in (request.get("stop") or []) if s]
        out: list[int] = []
        emitted = ""
        generator = llama.generate(tokens, temp=request["temperature"], top_k=40, top_p=0.95, min_p=0.05,
                                   repeat_penalty=1.0)
        try:
            for token in generator:
                if cancelled():
                    return
                if token == eos or llama.n_tokens >= n_ctx - 1:
                    usage["finish_reason"] = "stop" if token == eos else "length"
                    return
                out.append(token)
                usage["tokens_out"] += 1
                try:
                    text = llama.detokenize(out).decode("utf-8")
                except UnicodeDecodeError:
                    text = None  # half of a multi-byte character: wait for the next token
                if text is not None and len(text) > len(emitted):
                    hit = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
                    if hit >= 0:
                        if hit > len(emitted):
                            yield text[len(emitted):hit]
                        usage["finish_reason"] = "stop"
                        return
                    yield text[len(emitted):]
                    emitted = text
                if len(out) >= max_tokens:
                    usage["finish_reason"] = "length"
                    return
        finally:
            generator.close()


def run_collect(engine: EmbeddedEngine, request: dict, cancelled, on_start=None, on_delta=None) -> Usage:
    """Drive `engine.run` to its end, handing each delta to `on_delta`; return the usage dict."""
    gen = engine.run(request, cancelled, on_start)
    while True:
        try:
            piece = next(gen)
        except StopIteration as stop:
            return stop.value or Usage(tokens_in=0, tokens_out=0, finish_reason=None)
        if on_delta:
            on_delta(piece)


# -- the worker process ------------------------------------------------------------------------------------


def _serve(conn) -> None:
    """Load the model, say ready, then run requests one at a time until the supervisor hangs up."""
    send_lock = threading.Lock()

    def send(message) -> None:
        with send_lock:
            conn.send(message)

    first = conn.recv()
    if first[0] != "load":
        send(("fatal", f"expected a load message, got {first[0]!r}"))
        return
    config = first[1]
    started = time.perf_counter()
    try:
        engine = EmbeddedEngine(config["model_path"], config["n_ctx"], config["n_threads"])
    except BaseException as exc:  # noqa: BLE001 - any load failure is reported, then the worker exits
        send(("fatal", f"{type(exc).__name__}: {exc}"))
        return
    send(("ready", {"pid": os.getpid(), "load_ms": round((time.perf_counter() - started) * 1000, 1),
                    "system_info": engine.system_info(), "n_ctx": engine.n_ctx(), "model_path": config["model_path"]}))

    jobs: queue.Queue = queue.Queue()
    state: _ServeState = {"current": None, "queued": set(), "cancelled": set()}
    lock = threading.Lock()

    def reader() -> None:
        try:
            while True:
                message = conn.recv()
                if message[0] == "cancel":
                    with lock:  # a cancel for a request that already ended is dropped, so the set stays small
                        if message[1] == state["current"] or message[1] in state["queued"]:
                            state["cancelled"].add(message[1])
                elif message[0] == "quit":
                    jobs.put(None)
                    return
                else:
                    if message[0] == "run":
                        with lock:
                            state["queued"].add(message[1])
                    jobs.put(message)
        except (EOFError, OSError):
            os._exit(0)  # the supervisor is gone: nobody will read what we generate

    threading.Thread(target=reader, name="keel-embedded-reader", daemon=True).start()
    while True:
        message = jobs.get()
        if message is None:
            return
        op, rid = message[0], message[1]
        try:
            if op == "run":
                with lock:
                    state["current"] = rid
                    state["queued"].discard(rid)

                def cancelled(rid=rid) -> bool:
                    return rid in state["cancelled"]

                usage = run_collect(engine, message[2], cancelled,
                                    on_start=lambda n, rid=rid: send(("start", rid, n)),
                                    on_delta=lambda piece, rid=rid: send(("delta", rid, piece)))
                send(("done", rid, usage, engine.kv.stats()))
            elif op == "count":
                send(("reply", rid, {"tokens": engine.count_tokens(message[2]), "n_ctx": engine.n_ctx()}))
            elif op == "kv_clear":
                engine.kv.clear(engine.llama)
                send(("reply", rid, engine.kv.stats()))
            else:
                send(("error", rid, f"unknown operation {op!r}"))
        except RequestRejected as exc:
            send(("error", rid, str(exc)))
        except Exception as exc:  # noqa: BLE001 - a Python error in one request fails that request only
            send(("error", rid, f"embedded model failed: {type(exc).__name__}: {exc}"))
        finally:
            with lock:
                state["current"] = None
                state["cancelled"].discard(rid)


def main(argv: list[str]) -> int:
    import faulthandler
    from multiprocessing.connection import Connection

    faulthandler.enable()  # a native crash prints the Python stack to the worker's log before the process dies
    try:  # under memory pressure the kernel should kill the model worker, not the web process
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("500")
    except OSError:
        pass
    conn = Connection(int(argv[1]))
    try:
        _serve(conn)
    except (EOFError, OSError):
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
