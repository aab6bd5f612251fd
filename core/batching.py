"""One queue-and-thread batch writer for rows that must not slow the caller down (the request log, completion
telemetry): `put()` returns at once, one thread writes what has gathered every `flush_interval_s` (or at once for
an urgent item), `flush()` waits until everything queued so far is written, `close()` writes the rest and stops.
Subclasses say how to write a batch (`write_batch`) and, optionally, what to do once it is written (`after_batch`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

_logger = logging.getLogger(__name__)
_STOP = object()


class BatchWriter:
    def __init__(self, name: str, *, flush_interval_s: float = 0.2, batch: int = 500):
        self.name = name
        self._queue: queue.Queue = queue.Queue()
        self._interval = flush_interval_s
        self._batch = batch
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    # -- what a subclass provides -------------------------------------------------------------------------------

    def write_batch(self, items: list[Any]) -> None:
        raise NotImplementedError

    def after_batch(self, items: list[Any]) -> None:
        """Called once a batch is written (or failed): e.g. wake whoever waits for one of its rows."""

    def is_urgent(self, item: Any) -> bool:
        return False

    # -- the caller's side --------------------------------------------------------------------------------------

    def put(self, item: Any) -> None:
        if self._thread is None:
            self._start()
        self._queue.put(item)

    @property
    def pending(self) -> int:
        return self._queue.unfinished_tasks

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every item queued so far is written; False if that took longer than `timeout`."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue.unfinished_tasks

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread (a later `put` starts a new one)."""
        with self._start_lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout=timeout)

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    # -- the writer thread --------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                self._queue.task_done()
                return
            items = [first]
            deadline = time.monotonic() + (0.0 if self.is_urgent(first) else self._interval)
            stop = False
            while len(items) < self._batch:
                wait = deadline - time.monotonic()
                try:
                    item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    self._queue.task_done()
                    break
                items.append(item)
                if self.is_urgent(item):
                    deadline = 0.0  # take what is already queued, then write at once
            try:
                self.write_batch(items)
            except Exception:  # the writer thread must survive anything
                _logger.exception("%s failed on a batch of %d items", self.name, len(items))
            finally:
                try:
                    self.after_batch(items)
                finally:
                    for _ in items:
                        self._queue.task_done()
            if stop:
                return
