"""Issue 13 #2: one caller's bad text never erases another caller's request-log row, and health recovers.

On SQLite and PostgreSQL: lone surrogates, NUL, 1 MB strings and metadata that is not valid JSON are cleaned on
the way in; a row the database still refuses is quarantined with its error while the rest of its batch is
written; the health check counts failures in a recent window only. Then the same through the real `/v1` route
(uvicorn on loopback) with a concurrent well-behaved caller whose row must exist.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from sqlalchemy import text
from starlette.applications import Starlette

from core import auth, config, db, health
from core.api import routes
from core.llm import PriceBook, RequestLogWriter, get_gateway, save_prices, set_gateway
from core.llm._log import LogEntry, clean_text, metadata_json
from tests.support.fault_server import FaultServer, closed_port
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.timeout(120)

MEGABYTE = "é" * 400_000 + "x" * 600_000  # 1,000,000 characters, 1.4 MB of UTF-8


def _entry(request_id: str, **overrides) -> LogEntry:
    values = dict(
        request_id=request_id, attempt=0, created_at=time.time(), feature="test", task="t", prompt_id=None,
        prompt_version=None, tier="fast", provider="embedded", model="smollm2-135m-instruct", user="u",
        customer="acme", input_text="hello", output_text="world", tokens_in=100, tokens_out=200, ttft_ms=5.0,
        latency_ms=10.0, status="ok", error=None, json_valid=None,
    )
    values.update(overrides)
    return LogEntry(**values)


def _rows() -> dict[str, dict]:
    with db.get_engine().connect() as conn:
        result = conn.execute(text("SELECT * FROM request_log")).mappings().all()
    return {r["request_id"]: dict(r) for r in result}


def _customer_cost(customer: str) -> float:
    with db.get_engine().connect() as conn:
        return float(conn.execute(text("SELECT COALESCE(SUM(cost_usd), 0) FROM log_rollup_customer"
                                       " WHERE customer = :c"), {"c": customer}).scalar())


# -- the cleaning functions ----------------------------------------------------------------------------------


def test_clean_text_repairs_surrogates_drops_nul_and_marks_truncation():
    assert clean_text("a\ud800b") == "a\ufffdb"
    assert clean_text("\udfff") == "\ufffd"
    assert clean_text("\ud83d\ude00") == "\U0001F600"  # a pair split into two code points is joined, not lost
    assert clean_text("a\x00b\x00") == "ab"
    assert clean_text("plain ascii") == "plain ascii"
    cut = clean_text("x" * 50_000, 1_000)
    assert len(cut) == 1_000 and cut.startswith("x" * 900) and cut.endswith("[truncated: 50,000 characters in all]")


@pytest.mark.parametrize("value, expected", [
    ({"team": "search", "n": 3}, {"team": "search", "n": 3}),
    ('{"ok": true}', {"ok": True}),
    ("{not json", None),
    ('{"x": NaN}', None),
    ({"x": float("nan")}, None),
    ({"lone": "\ud800", "nul": "a\x00b", "k\ud800": ["\x00"]}, {"lone": "\ufffd", "nul": "ab", "k\ufffd": [""]}),
    (b"\xff\xfe", None),
    ({"obj": object()}, None),
])
def test_metadata_is_always_stored_as_valid_json(value, expected):
    stored = metadata_json(value)
    assert stored.isascii()
    parsed = json.loads(stored)  # whatever arrived, the column holds valid JSON
    if expected is not None:
        assert parsed == expected
    else:
        assert set(parsed) & {"invalid_json", "unserializable"} or parsed != value


# -- the writer on SQLite and PostgreSQL ---------------------------------------------------------------------


def test_hostile_values_never_cost_the_batch_its_good_rows(database):
    """Before the fix: the lone surrogate made the whole batch fail, and all of these rows were dropped."""
    writer = RequestLogWriter(PriceBook(0.05, 0.10), flush_interval_s=0.5)
    good = [_entry(f"good-{i}", customer="bystander") for i in range(5)]
    hostile = {
        "surrogate": _entry("surrogate", input_text="bad \ud800 input", output_text="\udfff", user="u\udc80"),
        "nul": _entry("nul", input_text="nul\x00inside", customer="acme\x00", error="e\x00"),
        "megabyte": _entry("megabyte", input_text=MEGABYTE, output_text=MEGABYTE, error=MEGABYTE),
        "long-names": _entry("long-names", feature="f" * 5_000, user="u" * 100_000, model="m" * 1_000),
        "bad-metadata": _entry("bad-metadata", metadata="{this is not json"),
        "nan-metadata": _entry("nan-metadata", metadata={"x": float("nan"), "s": "\ud800"}),
        "bad-numbers": _entry("bad-numbers", tokens_in=10**30, latency_ms=float("nan"), ttft_ms=float("inf")),
    }
    for entry in [good[0], *hostile.values(), *good[1:]]:  # one batch, bad rows in the middle
        writer.write(entry)
    writer.flush()
    writer.close()
    rows = _rows()
    assert writer.failed == 0 and writer.quarantined == 0
    assert set(rows) == {e.request_id for e in good} | set(hostile)
    assert rows["surrogate"]["input_text"] == "bad \ufffd input" and rows["surrogate"]["user"] == "u\ufffd"
    assert rows["nul"]["input_text"] == "nulinside" and rows["nul"]["customer"] == "acme"
    big = rows["megabyte"]["input_text"]
    assert len(big) == 20_000 and big.endswith("[truncated: 1,000,000 characters in all]")
    assert len(rows["long-names"]["feature"]) == 64 and len(rows["long-names"]["user"]) == 255
    assert json.loads(rows["bad-metadata"]["metadata_json"])["invalid_json"] == "{this is not json"
    assert "unserializable" in json.loads(rows["nan-metadata"]["metadata_json"])
    assert rows["bad-numbers"]["tokens_in"] == 2**31 - 1 and rows["bad-numbers"]["latency_ms"] == 0.0
    assert rows["bad-numbers"]["ttft_ms"] is None
    # the bystander's calls are in the totals budgets read
    assert _customer_cost("bystander") == pytest.approx(5 * (100 * 0.05 + 200 * 0.10) / 1e6)


def test_a_row_the_database_refuses_is_quarantined_alone_and_health_recovers(database, monkeypatch):
    writer = RequestLogWriter(PriceBook(0.05, 0.10), flush_interval_s=0.5, failure_window_s=1.0)
    good = [_entry(f"good-{i}") for i in range(4)]
    refused = _entry("refused", feature=None)  # NOT NULL: no cleaning can save it
    for entry in [good[0], good[1], refused, good[2], good[3]]:
        writer.write(entry)
    writer.flush()
    rows = _rows()
    assert set(rows) == {e.request_id for e in good}  # every good row of the batch is there
    assert writer.failed == 1
    with db.get_engine().connect() as conn:
        kept = conn.execute(text("SELECT request_id, error, row_json FROM request_log_quarantine")).all()
    assert len(kept) == 1 and kept[0][0] == "refused"
    assert "feature" in kept[0][1].lower() or "null" in kept[0][1].lower(), kept[0][1]
    assert json.loads(kept[0][2])["request_id"] == "refused"

    # health (the real check, with this writer behind the gateway) fails while the failure is recent ...
    gateway = get_gateway()
    old_log, gateway.log = gateway.log, writer
    try:
        check = health._timed(health._request_log)
        assert not check["ok"] and "could not be written" in check["error"]
        time.sleep(1.2)
        # ... and recovers by itself once it ages out of the window; no restart
        check = health._timed(health._request_log)
        assert check["ok"] and check["failed_total"] == 1 and check["failed_recent"] == 0
    finally:
        gateway.log = old_log
        writer.close()


def test_a_text_failure_keeps_a_scrubbed_copy_so_the_cost_still_counts(database, monkeypatch):
    """A row refused for its text (simulated: the database rejects one marker) is quarantined, and a copy without
    the text is logged, so the customer's spend stays true."""
    from core.llm import _log

    real_record = _log.record

    def picky_record(conn, rows, **kwargs):
        if any("POISON" in (r.get("input_text") or "") for r in rows):
            raise ValueError("the database refused this text")
        return real_record(conn, rows, **kwargs)

    monkeypatch.setattr(_log, "record", picky_record)
    writer = RequestLogWriter(PriceBook(0.05, 0.10), flush_interval_s=0.3)
    writer.write(_entry("fine", customer="c1"))
    writer.write(_entry("poisoned", customer="c1", input_text="POISON"))
    writer.flush()
    writer.close()
    rows = _rows()
    assert set(rows) == {"fine", "poisoned"}
    assert rows["poisoned"]["input_text"] is None and "quarantined" in rows["poisoned"]["error"]
    assert writer.quarantined == 1 and writer.failed == 0
    assert _customer_cost("c1") == pytest.approx(2 * (100 * 0.05 + 200 * 0.10) / 1e6)
    with db.get_engine().connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM request_log_quarantine")).scalar() == 1


def test_quarantine_falls_back_to_a_file_when_the_database_is_gone(database, tmp_path):
    writer = RequestLogWriter(PriceBook(0.05, 0.10), flush_interval_s=0.1, quarantine_dir=tmp_path / "q")
    with db.get_engine().begin() as conn:
        conn.execute(text("DROP TABLE request_log_quarantine"))
    writer.write(_entry("refused", feature=None, input_text="bad \ud800"))
    writer.flush()
    writer.close()
    lines = (tmp_path / "q" / "request_log_quarantine.jsonl").read_text(encoding="ascii").splitlines()
    assert len(lines) == 1
    kept = json.loads(lines[0])
    assert kept["request_id"] == "refused" and json.loads(kept["row_json"])["input_text"] == "bad \ufffd"


# -- through the real /v1 route ---------------------------------------------------------------------------------


@pytest.fixture
def v1(database, monkeypatch):
    with FaultServer(token_delay=0.01) as upstream, LiveServer(Starlette(routes=routes)) as server:
        monkeypatch.setenv("KEEL_PROVIDERS", json.dumps(
            {"up": {"kind": "openai", "base_url": upstream.url, "api_key": "k"}}))
        monkeypatch.setenv("KEEL_TIERS", json.dumps({"capable": ["up/m1"], "fast": ["up/m1"]}))
        monkeypatch.setenv("KEEL_LOG_FLUSH_INTERVAL", "0.3")  # a wide batch window: both callers share a batch
        monkeypatch.setenv("KEEL_DEV_IDP_PORT", str(closed_port()))
        config.reset_settings()
        old = set_gateway(None)
        if old is not None:
            old.log.close()
        save_prices([{"model": "m1", "input_per_mtok": 1.0, "output_per_mtok": 2.0}])
        keys = {}
        for ws in ("attacker", "bystander"):
            auth.ensure_workspace(ws)
            keys[ws] = auth.create_api_key(ws, "k")[0]
        yield server.url, keys


def test_v1_lone_surrogate_caller_does_not_erase_a_concurrent_callers_row(v1):
    url, keys = v1
    hostile_body = ('{"model": "capable", "max_tokens": 5, "metadata": {"tag": "\\ud800"},'
                    ' "messages": [{"role": "user", "content": "hi \\ud800 there \\u0000' + "y" * 150_000 + '"}]}')
    results: dict[str, httpx.Response] = {}

    def call(name: str, **kwargs) -> None:
        results[name] = httpx.post(f"{url}/v1/chat/completions", timeout=30,
                                   headers={"Authorization": f"Bearer {keys[name]}",
                                            "Content-Type": "application/json"}, **kwargs)

    threads = [threading.Thread(target=call, args=("attacker",), kwargs={"content": hostile_body.encode()}),
               threading.Thread(target=call, args=("bystander",),
                                kwargs={"json": {"model": "capable", "max_tokens": 5,
                                                 "messages": [{"role": "user", "content": "hello"}]}})]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["attacker"].status_code == 200, results["attacker"].text
    assert results["bystander"].status_code == 200, results["bystander"].text
    get_gateway().log.flush()
    with db.get_engine().connect() as conn:
        rows = {r[0]: r for r in conn.execute(text(
            "SELECT customer, input_text, metadata_json, status FROM request_log")).all()}
    assert set(rows) == {"attacker", "bystander"}  # the good caller's row exists
    assert rows["bystander"][3] == "ok" and rows["attacker"][3] == "ok"
    assert "hi \ufffd there " in rows["attacker"][1] and "\x00" not in rows["attacker"][1]
    assert json.loads(rows["attacker"][2]) == {"tag": "\ufffd"}
    assert _customer_cost("bystander") > 0  # in the totals budgets read
    checks = httpx.get(f"{url}/api/health", timeout=10).json()["checks"]
    assert checks["request_log"]["ok"] and checks["request_log"]["failed_recent"] == 0


def test_v1_refuses_metadata_that_breaks_the_openai_rules(v1):
    url, keys = v1
    response = httpx.post(f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {keys['bystander']}"},
                          json={"model": "capable", "metadata": {"n": 1},
                                "messages": [{"role": "user", "content": "hi"}]}, timeout=10)
    assert response.status_code == 400 and "'metadata'" in response.json()["error"]["message"]
