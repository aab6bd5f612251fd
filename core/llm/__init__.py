"""The LLM gateway: every model call in Keel goes through here, so every call is timed, priced and logged.

Tiers (fast, capable, code) map to provider/model chains; the embedded llama.cpp model needs no network and
any OpenAI-compatible server can take over by configuration.
"""

from __future__ import annotations

import threading

from core.config import get_settings
from core.llm._budgets import BudgetStatus, list_budgets, save_budgets
from core.llm._gateway import MAX_INPUT_CHARS, CircuitBreaker, Gateway, LLMStream
from core.llm._log import PriceBook, RequestLogWriter, bucket_latency_ms, latency_bucket, looks_like_refusal
from core.llm._prices import ensure_default_prices, list_prices, save_prices
from core.llm._rollup import record as record_log_rows
from core.llm._providers import EmbeddedProvider, OpenAIProvider, build_providers, embedded_model_path
from core.llm._types import (
    STATUSES,
    BudgetRefused,
    CancelToken,
    Chunk,
    Completion,
    LLMCancelled,
    LLMError,
    LLMRequest,
    Provider,
    ProviderError,
    RequestStatus,
)

__all__ = [
    "STATUSES", "BudgetRefused", "Provider", "RequestStatus",
    "BudgetStatus", "list_budgets", "save_budgets", "MAX_INPUT_CHARS", "CancelToken", "Chunk", "CircuitBreaker", "Completion", "EmbeddedProvider", "Gateway",
    "LLMCancelled", "LLMError", "LLMRequest", "LLMStream", "OpenAIProvider", "PriceBook", "ProviderError",
    "RequestLogWriter", "bucket_latency_ms", "ensure_default_prices", "list_prices", "save_prices", "build_gateway", "close_providers", "flush_gateway", "embedded_model_path", "get_gateway",
    "latency_bucket", "looks_like_refusal", "record_log_rows", "set_gateway", "shutdown_gateway",
]

_gateway: Gateway | None = None
_lock = threading.Lock()


def build_gateway(settings=None) -> Gateway:
    settings = settings or get_settings()
    prices = PriceBook(settings.embedded_price_in, settings.embedded_price_out)
    writer = RequestLogWriter(prices, redact=settings.redact_log, flush_interval_s=settings.log_flush_interval_s,
                              review_share=settings.annotation_sample_share)
    return Gateway(settings, build_providers(settings), writer)


def get_gateway() -> Gateway:
    """The process-wide gateway (one embedded model, one log writer), built on first use."""
    global _gateway
    with _lock:
        if _gateway is None:
            _gateway = build_gateway()
        return _gateway


def set_gateway(gateway: Gateway | None) -> Gateway | None:
    """Swap the process-wide gateway (tests and `keel serve` with other settings); returns the old one."""
    global _gateway
    with _lock:
        old, _gateway = _gateway, gateway
        return old


def close_providers(gateway: Gateway) -> None:
    """Stop what the providers run beside the process (the embedded model's worker)."""
    for provider in gateway.providers.values():
        close = getattr(provider, "close", None)
        if close is not None:
            close()


def flush_gateway(timeout: float = 10.0) -> bool:
    """Commit the queued request-log rows if this process built a gateway (a CLI command may never have)."""
    with _lock:
        gateway = _gateway
    return gateway.flush(timeout) if gateway is not None else True


def shutdown_gateway() -> None:
    global _gateway
    with _lock:
        if _gateway is not None:
            _gateway.log.flush()  # the writer itself, so a gateway stand-in with a log also shuts down
            _gateway.log.close()
            close_providers(_gateway)
            _gateway = None
