"""The `keel` command line, run as a real subprocess against a fresh data directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def keel(tmp_path):
    env = {**os.environ, "KEEL_HOME": str(tmp_path / "keel"), "HF_HUB_OFFLINE": "1"}
    env.pop("KEEL_DATABASE_URL", None)

    def run(*args, stdin: bytes | None = None, timeout: float = 180):
        return subprocess.run([sys.executable, "-m", "core.cli", *args], env=env, cwd=REPO, input=stdin,
                              capture_output=True, timeout=timeout)

    return run


def test_users_lists_the_demo_identities(keel):
    out = keel("users", "--json")
    assert out.returncode == 0, out.stderr
    users = {u["sub"]: u for u in json.loads(out.stdout)}
    assert len(users) >= 5
    assert {u["clearance"] for u in users.values()} >= {0, 1, 2, 3}
    assert "admin" in users["erin.exec@keel.dev"]["roles"]
    assert users["milo.intern@keel.dev"]["roles"] == ["member"]


def test_db_upgrade_reports_head(keel):
    out = keel("db", "upgrade", "--json")
    assert out.returncode == 0, out.stderr
    from core import db

    assert json.loads(out.stdout)["revision"] == db.head_revision()


def test_llm_chat_streams_and_logs_with_the_embedded_model(keel):
    out = keel("llm", "chat", "--tier", "fast", "--max-tokens", "12", "Say hello")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()
    out = keel("llm", "chat", "--tier", "fast", "--max-tokens", "8", "--json", "Count to three")
    result = json.loads(out.stdout)
    assert result["status"] == "ok" and result["tokens_out"] > 0 and result["provider"] == "embedded"
    tail = keel("logs", "tail", "-n", "5", "--json")
    rows = [json.loads(line) for line in tail.stdout.splitlines()]
    assert [r["feature"] for r in rows] == ["cli", "cli"]
    assert rows[-1]["request_id"] == result["request_id"]
    assert "input_text" not in rows[-1]  # prompts stay out of the terminal unless --full


@pytest.mark.parametrize("args, stdin, message", [
    (["llm", "chat", "--tier", "nosuch", "hi"], None, b"unknown tier"),
    (["llm", "chat", "   "], None, b"empty"),
    (["llm", "chat", "-"], b"\xff\xfe\x00binary", b"not UTF-8"),
    (["llm", "chat", "--max-tokens", "0", "hi"], None, b"max_tokens"),
])
def test_bad_input_gets_a_clear_error_and_no_traceback(keel, args, stdin, message):
    out = keel(*args, stdin=stdin)
    assert out.returncode != 0
    assert message in out.stderr
    assert b"Traceback" not in out.stderr


def test_demo_seed_is_idempotent(keel, tmp_path):
    first = json.loads(keel("demo", "seed", "--traffic", "200", "--json").stdout)
    second = json.loads(keel("demo", "seed", "--traffic", "200", "--json").stdout)
    assert first["synthetic_rows_added"] == 200 and second["synthetic_rows_added"] == 0
    key = Path(first["api_key_file"]).read_text().strip()
    assert key.startswith("keel_sk_")
    assert Path(second["api_key_file"]).read_text().strip() == key
