"""`keel workspace run`, as a real subprocess against a fresh data directory and the embedded model."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTES = "Meeting notes: Bob will send the budget by Friday. Alice needs to review the contract next week.\n"

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def home(tmp_path):
    return tmp_path / "keel"


@pytest.fixture
def keel(home):
    env = {**os.environ, "KEEL_HOME": str(home), "HF_HUB_OFFLINE": "1", "USER": "tester"}
    for name in list(env):
        if name.startswith("KEEL_") and name != "KEEL_HOME":
            env.pop(name)

    def run(*args, timeout: float = 180):
        return subprocess.run([sys.executable, "-m", "core.cli", *args], env=env, cwd=REPO,
                              capture_output=True, timeout=timeout)

    return run


@pytest.fixture
def files(tmp_path):
    def write(name: str, data: bytes | str) -> str:
        path = tmp_path / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return str(path)

    return write


def db_count(home: Path, table: str) -> int:
    path = home / "keel.db"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as conn:
        try:
            return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        except sqlite3.OperationalError:  # not migrated yet: nothing was written
            return 0


@pytest.mark.embedded_model
def test_find_action_items_json_has_items_and_is_logged(keel, files, home):
    out = keel("workspace", "run", "find_action_items", "--text-file", files("notes.md", NOTES), "--json")
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)  # exactly one JSON object on stdout
    assert {"text", "request_id", "tokens_in", "tokens_out", "latency_ms", "credits_left", "items"} <= set(payload)
    assert payload["workspace"] == "demo" and payload["credits_left"] == 19 and payload["tokens_out"] > 0
    assert isinstance(payload["items"], list) and all(set(i) == {"task", "assignee", "due"} for i in payload["items"])
    assert json.loads(payload["text"])["items"] is not None  # the raw schema-constrained JSON
    tail = keel("logs", "tail", "-n", "5", "--json")
    (row,) = [json.loads(line) for line in tail.stdout.splitlines()]
    assert (row["feature"], row["task"], row["customer"], row["user"]) == (
        "workspace", "find_action_items", "demo", "cli:tester")
    assert row["request_id"] == payload["request_id"] and row["json_valid"] is True


@pytest.mark.embedded_model
def test_text_mode_streams_to_stdout_and_reports_credits(keel, files):
    text_file = files("draft.txt", "their going too the shop tomorow.")
    out = keel("workspace", "run", "fix_grammar", "--text-file", text_file, "--max-tokens", "24")
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().strip()
    assert b"credits left this month: 19" in out.stderr
    out = keel("workspace", "run", "translate", "--text-file", text_file, "--language", "fr", "--json",
               "--max-tokens", "16")
    payload = json.loads(out.stdout)
    assert payload["credits_left"] == 18 and "items" not in payload


@pytest.mark.parametrize("args, content, message", [
    (["nope"], NOTES, b"unknown task 'nope'; valid tasks: summarize, improve_writing, fix_grammar"),
    (["explain"], b"caf\xe9 \xff\xfe", b"is not UTF-8 text (bad byte at offset 3)"),
    (["explain"], None, b"does not exist"),
    (["explain"], "", b"the selection is empty"),
    (["explain"], " \n\t\n", b"the selection is empty"),
    (["translate", "--language", "Klingon"], NOTES, b"unsupported target language 'Klingon'"),
    (["translate"], NOTES, b"needs a target language"),
    (["fix_grammar"], "word " * 1000, b"works on at most 2,000"),
    (["explain", "--workspace", "../etc"], NOTES, b"a workspace id is"),
])
def test_bad_input_fails_clearly_without_a_call_or_a_credit(keel, files, home, args, content, message):
    path = files("input.txt", content) if content is not None else str(home.parent / "missing.txt")
    out = keel("workspace", "run", args[0], "--text-file", path, *args[1:])
    assert out.returncode == 2, out
    assert out.stderr.startswith(b"error: ") and message in out.stderr
    assert b"Traceback" not in out.stderr and out.stdout == b""
    assert db_count(home, "request_log") == 0 and db_count(home, "workspace_credit") == 0


def test_spent_quota_gives_the_reset_date_and_calls_nothing(keel, files, home, monkeypatch):
    from datetime import date

    from tests.conftest import _reset_core

    monkeypatch.setenv("KEEL_HOME", str(home))
    monkeypatch.delenv("KEEL_DATABASE_URL", raising=False)
    _reset_core()
    try:
        from core import services
        from core.workspace import ensure_member, reserve_credit, resets_on, utc_now, month_key

        services.prepare()
        ensure_member("demo", "someone-else", name="Demo workspace")
        for _ in range(20):
            reserve_credit("demo", "someone-else", "summarize")
        reset = resets_on(month_key(utc_now()))
    finally:
        _reset_core()
    out = keel("workspace", "run", "summarize", "--text-file", files("notes.md", NOTES))
    assert out.returncode == 3
    assert b"has used all 20 AI responses" in out.stderr and reset.isoformat().encode() in out.stderr
    assert isinstance(reset, date) and b"Traceback" not in out.stderr
    assert db_count(home, "request_log") == 0 and db_count(home, "workspace_credit") == 20


def test_tasks_lists_the_catalogue(keel):
    out = keel("workspace", "tasks", "--json")
    assert out.returncode == 0, out.stderr
    tasks = {t["id"]: t for t in json.loads(out.stdout)}
    assert len(tasks) == 12 and tasks["translate"]["params"]["language"][:2] == ["English", "Spanish"]
    assert tasks["ask_about_page"]["uses_page"] and not tasks["fix_grammar"]["uses_page"]
