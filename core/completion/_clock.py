"""Clocks for the engine: the real monotonic one, and a controllable one so tests of debounce, cache expiry
and cancellation are deterministic (a wait on the fake clock advances time instead of sleeping)."""

from __future__ import annotations

import threading
import time


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Sleep up to `timeout` seconds; True if `event` was set meanwhile (the wait was interrupted)."""
        if timeout <= 0:
            return event.is_set()
        return event.wait(timeout)


class FakeClock:
    """Time moves only when a test says so: `advance()`, or a `wait()` that nobody interrupts."""

    def __init__(self, start: float = 1000.0):
        self._now = start
        self._lock = threading.Lock()
        self.waits: list[float] = []  # every wait's timeout, so tests can assert the debounce used

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def wait(self, event: threading.Event, timeout: float) -> bool:
        self.waits.append(timeout)
        if event.is_set():
            return True
        self.advance(max(0.0, timeout))
        return event.is_set()
