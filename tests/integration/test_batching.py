"""The one batch writer behind the request log and completion telemetry: urgent items skip the delay, flush waits,
close writes the rest; and `services.shutdown()` writes both queues even when their flush interval is far off."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from sqlalchemy import func, select

from core import db, services
from core.batching import BatchWriter
from core.completion import CompletionService, TelemetryWriter, set_completion_service
from core.completion._engine import Outcome
from core.llm import PriceBook, RequestLogWriter
from core.llm._log import LogEntry
from core.tables import CompletionEvent, RequestLog


class Recorder(BatchWriter):
    def __init__(self, **kw):
        super().__init__("test-batch", **kw)
        self.batches: list[list] = []
        self.done = threading.Event()

    def write_batch(self, items):
        if "boom" in items:
            raise RuntimeError("a bad batch")
        self.batches.append(list(items))

    def after_batch(self, items):
        self.done.set()

    def is_urgent(self, item):
        return item == "now"


def test_batches_gather_urgent_items_go_at_once_and_close_writes_the_rest():
    w = Recorder(flush_interval_s=30.0)
    w.put("a")
    w.put("now")
    assert w.done.wait(5) and w.batches == [["a", "now"]]  # the urgent item did not wait 30 s
    w.put("boom")
    w.put("now")
    assert w.flush(5) and len(w.batches) == 1  # that batch failed...
    w.put("b")
    w.put("now")
    assert w.flush(5) and w.batches[-1] == ["b", "now"]  # ...and the thread lives on
    w.put("c")
    w.put("d")
    t0 = time.monotonic()
    w.close(timeout=5)
    assert time.monotonic() - t0 < 5 and w.batches[-1] == ["c", "d"] and w.pending == 0


def _entry(i: int) -> LogEntry:
    return LogEntry(request_id=f"shutdown-{i}", attempt=0, created_at=time.time(), feature="test", task="t",
                    prompt_id=None, prompt_version=None, tier="fast", provider="openai", model="m", user="u",
                    customer="c", input_text="hi", output_text="ho", tokens_in=1, tokens_out=1, ttft_ms=1.0,
                    latency_ms=2.0, status="ok", error=None, json_valid=None)


def test_shutdown_writes_queued_request_log_rows_and_completion_telemetry(database, monkeypatch):
    import core.llm as llm

    log = RequestLogWriter(PriceBook(0.0, 0.0), flush_interval_s=60.0)
    gateway = SimpleNamespace(log=log, providers={})
    monkeypatch.setattr(llm, "_gateway", gateway)
    monkeypatch.setattr(llm, "close_providers", lambda g: None)
    telemetry = TelemetryWriter(flush_interval_s=60.0)
    set_completion_service(CompletionService(backend=object(), telemetry=telemetry))
    for i in range(3):
        log.write(_entry(i))
        telemetry.record(SimpleNamespace(session_id="s1", user="u", customer="c"),
                         Outcome(id=f"sug-{i}", path="a.py", language="python", status="shown", text="x"))
    time.sleep(0.3)
    with db.get_engine().connect() as conn:  # nothing written yet: both wait for their 60 s interval
        assert conn.execute(select(func.count()).select_from(RequestLog.__table__)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(CompletionEvent.__table__)).scalar() == 0
    services.shutdown()
    with db.get_engine().connect() as conn:
        assert conn.execute(select(func.count()).select_from(RequestLog.__table__)).scalar() == 3
        assert conn.execute(select(func.count()).select_from(CompletionEvent.__table__)).scalar() == 3
