"""Providers: the embedded llama.cpp model (in a supervised worker, `_embedded.py`) and any OpenAI-compatible server.

A provider turns a request into a stream of text deltas and fills in `Usage`; retries, fallback and
logging are the gateway's job, so providers only translate errors into `ProviderError`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, cast

from core.config import ProviderSettings, Settings
from core.llm._embedded import EmbeddedProvider, embedded_model_path
from core.llm._types import CancelToken, LLMRequest, Provider, ProviderError, Usage

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

_logger = logging.getLogger(__name__)

__all__ = ["EmbeddedProvider", "OpenAIProvider", "build_providers", "embedded_model_path", "monotonic_ms"]


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

    def stream(self, model: str, request: LLMRequest, usage: Usage,
               cancel: CancelToken) -> Generator[str, None, None]:
        if request.prompt is not None:
            yield from self._stream_raw(model, request, usage, cancel)
            return
        from openai import omit  # an omitted argument is not sent at all

        # LLMRequest keeps messages as plain role/content dicts, which is exactly what these params are
        messages = cast("list[ChatCompletionMessageParam]", request.messages)
        try:
            stream = self._client.chat.completions.create(
                model=model,
                messages=messages,
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                stream=True,
                stream_options={"include_usage": True},
                stop=request.stop or omit,
                response_format=omit if request.json_schema is None else {
                    "type": "json_schema",
                    "json_schema": {"name": "output", "schema": request.json_schema, "strict": True},
                },
            )
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

    def _stream_raw(self, model: str, request: LLMRequest, usage: Usage,
                    cancel: CancelToken) -> Generator[str, None, None]:
        """Legacy `/v1/completions` with a prompt string: what FIM models behind vLLM, llama.cpp or Ollama take."""
        from openai import omit  # an omitted argument is not sent at all

        try:
            stream = self._client.completions.create(
                model=model, prompt=request.prompt, max_tokens=request.max_tokens,
                temperature=request.temperature, stream=True,
                stop=request.stop[:4] if request.stop else omit,  # the OpenAI API accepts at most four
            )
        except Exception as exc:
            raise self._translate(exc, cancel, "before the response started") from exc
        cancel.on_cancel(stream.close)
        try:
            for chunk in stream:
                if cancel.cancelled:
                    break
                counts = chunk.usage  # None on most chunks (the model's field defaults to None)
                if counts is not None:
                    usage.tokens_in = counts.prompt_tokens or 0
                    usage.tokens_out = counts.completion_tokens or 0
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                if choice.finish_reason:
                    usage.finish_reason = choice.finish_reason
                if choice.text:
                    usage.tokens_out += 0 if counts else 1
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
    except Exception:  # a streamed body may be unread or undecodable: the status alone still says enough
        _logger.debug("cannot read the provider's error body", exc_info=True)
    return ProviderError(
        f"HTTP {status} from provider: {body or exc}",
        retryable=status in (408, 409, 429) or status >= 500,
        retry_after=retry_after,
    )


def build_providers(settings: Settings) -> dict[str, Provider]:
    providers: dict[str, Provider] = {}
    for name, spec in settings.providers.items():
        if spec.kind == "embedded":
            providers[name] = EmbeddedProvider(name, settings)
        else:
            providers[name] = OpenAIProvider(name, spec, settings)
    return providers


def monotonic_ms() -> float:
    return time.perf_counter() * 1000.0
