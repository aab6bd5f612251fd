"""The embedded model called in the benchmark's own process, as Keel did before the worker: the baseline arm.

Same engine (`core.llm._embedded_worker.EmbeddedEngine`), same gateway provider interface, no process boundary,
so a side-by-side run shows exactly what isolating llama.cpp in a worker costs. Never used by the app.
"""

from __future__ import annotations

import threading

from core.config import EMBEDDED_MODEL, Settings
from core.llm._embedded import embedded_model_path
from core.llm._embedded_worker import EmbeddedEngine, RequestRejected
from core.llm._types import CancelToken, LLMRequest, ProviderError, Usage


class InProcessEmbeddedProvider:
    kind = "embedded"

    def __init__(self, name: str, settings: Settings):
        self.name = name
        self._settings = settings
        self._engine: EmbeddedEngine | None = None
        self._lock = threading.Lock()
        self.busy_threads = 0

    @property
    def loaded(self) -> bool:
        return self._engine is not None

    def load(self) -> EmbeddedEngine:
        if self._engine is None:
            self._engine = EmbeddedEngine(str(embedded_model_path(self._settings)), self._settings.embedded_ctx,
                                          self._settings.embedded_threads)
        return self._engine

    def kv_stats(self) -> dict:
        return self.load().kv.stats()

    def kv_clear(self) -> dict:
        engine = self.load()
        engine.kv.clear(engine.llama)
        return engine.kv.stats()

    def close(self) -> None:
        self._engine = None

    def stream(self, model: str, request: LLMRequest, usage: Usage, cancel: CancelToken):
        if model != EMBEDDED_MODEL:
            raise ProviderError(f"the embedded provider serves only {EMBEDDED_MODEL}, not {model!r}")
        engine = self.load()
        while not self._lock.acquire(timeout=0.05):
            if cancel.cancelled:
                return
        try:
            self.busy_threads += 1
            payload = {"messages": request.messages, "prompt": request.prompt, "max_tokens": request.max_tokens,
                       "temperature": request.temperature, "stop": request.stop,
                       "json_schema": request.json_schema, "cache_key": request.cache_key}
            gen = engine.run(payload, lambda: cancel.cancelled)
            try:
                while True:
                    try:
                        piece = next(gen)
                    except StopIteration as stop:
                        done = stop.value or {}
                        usage.tokens_in = done.get("tokens_in", 0)
                        usage.tokens_out = done.get("tokens_out", 0)
                        usage.finish_reason = done.get("finish_reason")
                        return
                    usage.tokens_out += 1
                    yield piece
            except RequestRejected as exc:
                raise ProviderError(str(exc)) from exc
            finally:
                gen.close()
        finally:
            self.busy_threads -= 1
            self._lock.release()
