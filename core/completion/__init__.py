"""Code completion: fill-in-the-middle prompts per model family, context under a token budget, and an engine
that checks its cache before debouncing, cancels stale requests, reuses typed-ahead suggestions, speculates
after an acceptance and streams tokens that stop at the end of the line or block. Every generation goes
through the gateway (feature `completion`); each suggestion's outcome is recorded as telemetry.
"""

from core.completion._backend import GatewayBackend, GatewayRun
from core.completion._cache import CacheEntry, SuggestionCache, content_key
from core.completion._clock import FakeClock, MonotonicClock
from core.completion._context import Budget, approx_tokens, assemble, prefix_window_start
from core.completion._engine import (
    DEFAULT_DEBOUNCE_MS,
    CompletionSession,
    ModelActivity,
    Outcome,
    SessionStats,
    Ticket,
)
from core.completion._fim import PREFIX_ONLY, TEMPLATES, ContextChunk, Prompt, template_for
from core.completion._languages import language_for
from core.completion._postprocess import StopRule
from core.completion._service import CompletionService, get_completion_service, set_completion_service
from core.completion._telemetry import TelemetryWriter, recent_events
from core.completion._types import (
    MAX_FILE_CHARS,
    CompletionInputError,
    CompletionOptions,
    EditorState,
    SuggestionEvent,
    offset_of,
    validate_state,
)

__all__ = [
    "Budget", "CacheEntry", "CompletionInputError", "CompletionOptions", "CompletionSession", "ContextChunk",
    "DEFAULT_DEBOUNCE_MS", "EditorState", "FakeClock", "GatewayBackend", "GatewayRun", "MAX_FILE_CHARS",
    "ModelActivity", "MonotonicClock", "Outcome", "PREFIX_ONLY", "Prompt", "SessionStats", "StopRule", "SuggestionCache",
    "SuggestionEvent", "TEMPLATES", "Ticket", "approx_tokens", "assemble", "content_key", "language_for",
    "offset_of", "prefix_window_start", "template_for", "validate_state", "CompletionService",
    "get_completion_service", "set_completion_service", "TelemetryWriter", "recent_events",
]
