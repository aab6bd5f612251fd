"""Requests, streamed chunks, results and errors of the gateway."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from core.errors import KeelError

_logger = logging.getLogger(__name__)


class RequestStatus(StrEnum):
    """The status of one request-log row (one attempt); the values are what `request_log.status` stores."""

    OK = "ok"  # the first target answered
    ERROR = "error"  # this attempt failed (the call may still succeed on a later attempt)
    FALLBACK = "fallback"  # a later target answered after earlier ones failed
    CANCELLED = "cancelled"  # the caller cancelled or walked away
    BUDGET_REFUSED = "budget_refused"  # a hard budget refused the call before anything was sent


STATUSES = tuple(RequestStatus)
# Rows whose output a model produced and a caller received.
ANSWERED = (RequestStatus.OK, RequestStatus.FALLBACK)


@dataclass
class LLMRequest:
    """One logical LLM call, described the same way by every feature."""

    messages: list[dict[str, str]]
    tier: str = "capable"
    feature: str = "playground"
    task: str = "chat"
    prompt_id: str | None = None
    prompt_version: str | None = None
    user: str | None = None
    customer: str | None = None
    max_tokens: int = 256
    temperature: float = 0.7
    json_schema: dict[str, Any] | None = None
    stop: list[str] | None = None
    target: str | None = None  # "provider/model" to bypass the tier map (the playground's model picker)
    # Raw text completion (code completion): `prompt` is sent as is instead of chat `messages`.
    prompt: str | None = None
    # A key naming whose KV state this is (e.g. one per edited file), so a provider can keep one per key.
    cache_key: str | None = None
    # Checked after each streamed chunk; True ends the answer normally (status ok, finish_reason "stop").
    stop_when: Callable[[], bool] | None = field(default=None, repr=False, compare=False)
    # The caller's tags for this call (e.g. OpenAI's `metadata`), logged as JSON with the row.
    metadata: dict[str, Any] | None = None
    # The caller will wait (`LLMStream.wait_logged`) for the log row to be committed before answering its own
    # client, so the row is written at once instead of with the next batch.
    durable_log: bool = False

    @classmethod
    def from_prompt(cls, prompt, values: dict[str, str], **overrides) -> "LLMRequest":
        params = dict(
            messages=prompt.render(**values),
            tier=prompt.tier,
            prompt_id=prompt.id,
            prompt_version=prompt.version,
            max_tokens=prompt.max_tokens,
            temperature=prompt.temperature,
        )
        params.update(overrides)
        return cls(**params)


@dataclass(frozen=True)
class Chunk:
    """A piece of streamed output. `reset` means a fallback restarted the answer: drop what was shown."""

    text: str = ""
    reset: bool = False


@dataclass
class Completion:
    request_id: str
    text: str
    tier: str
    provider: str
    model: str
    status: RequestStatus
    tokens_in: int = 0
    tokens_out: int = 0
    ttft_ms: float | None = None
    latency_ms: float = 0.0
    attempts: int = 1
    json: Any = None
    finish_reason: str | None = None
    cost_usd: float = 0.0  # priced like the request-log row of the attempt that answered


class LLMError(KeelError, RuntimeError):
    """Every target of the tier failed or the call was refused; `attempts` lists why, in order."""

    def __init__(self, message: str, *, request_id: str = "", attempts: list[str] | None = None,
                 status: RequestStatus = RequestStatus.ERROR):
        super().__init__(message)
        self.request_id = request_id
        self.attempts = attempts or []
        self.status = status


class LLMCancelled(LLMError):
    def __init__(self, request_id: str = ""):
        super().__init__("the request was cancelled", request_id=request_id, status=RequestStatus.CANCELLED)


class BudgetRefused(LLMError):
    """A hard budget refused the call before it reached a provider; callers answer 429 / "budget reached"."""

    def __init__(self, message: str, *, request_id: str = ""):
        super().__init__(message, request_id=request_id, status=RequestStatus.BUDGET_REFUSED)


class ProviderError(KeelError, RuntimeError):
    """One attempt failed. `retryable` errors are retried on the same target before falling back."""

    def __init__(self, message: str, *, retryable: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass
class CancelToken:
    """Set from any thread to stop a stream at the next token."""

    _event: threading.Event = field(default_factory=threading.Event)
    _callbacks: list = field(default_factory=list)

    def cancel(self) -> None:
        self._event.set()
        for callback in list(self._callbacks):
            try:
                callback()
            except Exception:  # one broken callback must not keep the others from stopping their streams
                _logger.exception("a cancel callback failed")

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def on_cancel(self, callback) -> None:
        self._callbacks.append(callback)
        if self.cancelled:
            callback()

    def off_cancel(self, callback) -> None:
        try:
            self._callbacks.remove(callback)
        except ValueError:
            pass


@dataclass
class Usage:
    tokens_in: int = 0
    tokens_out: int = 0
    finish_reason: str | None = None


@runtime_checkable
class Provider(Protocol):
    """What the gateway needs of a model server: stream text deltas for one attempt and fill in `usage`.

    Retries, fallback, budgets and logging stay in the gateway, so a provider only translates its failures into
    `ProviderError` (retryable or not). Optional extras the gateway and health look for: `health()`, `close()`.
    """

    name: str
    kind: str

    @property
    def loaded(self) -> bool: ...

    def models(self) -> list[str]: ...

    def stream(self, model: str, request: LLMRequest, usage: Usage,
               cancel: CancelToken) -> Generator[str, None, None]:
        """A generator, so the gateway can close it when an attempt ends early."""
