"""The process-wide completion service: one `CompletionSession` per (user, editor session), all sharing the
gateway backend and the telemetry writer; sessions idle for 30 minutes are forgotten."""

from __future__ import annotations

import threading
from collections import OrderedDict

from core.completion._backend import GatewayBackend
from core.completion._clock import MonotonicClock
from core.completion._context import Budget
from core.completion._engine import IDLE_WARM_S, CompletionSession, ModelActivity
from core.completion._telemetry import TelemetryWriter

MAX_SESSIONS = 500
IDLE_S = 1800.0


class CompletionService:
    def __init__(self, backend=None, *, clock=None, budget: Budget | None = None, telemetry=None):
        self._backend = backend
        self.clock = clock or MonotonicClock()
        self.budget = budget or Budget()
        self.telemetry = telemetry if telemetry is not None else TelemetryWriter()
        self._sessions: OrderedDict[tuple, CompletionSession] = OrderedDict()
        self.activity = ModelActivity()  # the sessions share one model: a keystroke in one stops idle warm-ups
        self._lock = threading.Lock()

    @property
    def backend(self):
        if self._backend is None:
            self._backend = GatewayBackend()
        return self._backend

    def session(self, user: str | None, session_id: str, customer: str | None = None) -> CompletionSession:
        # The workspace is part of the key: one user identity never shares a session (cache, speculation,
        # billing) across workspaces.
        key = (user or "", customer or "", (session_id or "default")[:64])
        with self._lock:
            found = self._sessions.get(key)
            if found is None:
                found = CompletionSession(self.backend, clock=self.clock, budget=self.budget, session_id=key[2],
                                          user=user, customer=customer, telemetry=self.telemetry,
                                          idle_warm_s=IDLE_WARM_S, activity=self.activity)
                self._sessions[key] = found
            self._sessions.move_to_end(key)
            now = self.clock.now()
            while self._sessions and (len(self._sessions) > MAX_SESSIONS or
                                      now - next(iter(self._sessions.values())).last_used > IDLE_S):
                oldest_key = next(iter(self._sessions))
                if oldest_key == key:
                    break
                self._sessions.popitem(last=False)
            return found


_service: CompletionService | None = None
_service_lock = threading.Lock()


def get_completion_service() -> CompletionService:
    global _service
    with _service_lock:
        if _service is None:
            _service = CompletionService()
        return _service


def set_completion_service(service: CompletionService | None) -> CompletionService | None:
    """Swap the process-wide service (tests); returns the old one."""
    global _service
    with _service_lock:
        old, _service = _service, service
        return old
