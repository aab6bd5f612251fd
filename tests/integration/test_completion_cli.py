"""`keel complete` and `keel bench completion` as real subprocesses against a fresh data directory."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def keel(tmp_path):
    env = {**os.environ, "KEEL_HOME": str(tmp_path / "keel"), "HF_HUB_OFFLINE": "1", "KEEL_DEV_IDP": "0"}
    env.pop("KEEL_DATABASE_URL", None)

    def run(*args, timeout: float = 240):
        return subprocess.run([sys.executable, "-m", "core.cli", *args], env=env, cwd=REPO, capture_output=True,
                              text=True, timeout=timeout)

    return run


@pytest.mark.embedded_model
def test_complete_prints_a_suggestion_and_logs_it(keel, tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "stats.py").write_text("def mean(values):\n    total = \n")
    (project / "util.py").write_text("def clamp(x, lo, hi):\n    return max(lo, min(hi, x))\n")
    out = keel("complete", str(project / "stats.py"), "--line", "2", "--col", "13", "--json", "--max-tokens", "8")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert set(result) >= {"completion", "latency_ms", "cached"}
    assert result["status"] in ("shown", "empty") and result["cached"] is False
    assert "\n" not in result["completion"]
    with sqlite3.connect(tmp_path / "keel" / "keel.db") as db:
        rows = db.execute("select status, input_text from request_log where feature = 'completion'").fetchall()
        events = db.execute("select status, source from completion_event").fetchall()
    assert len(rows) == 1 and rows[0][0] == "ok" and "def clamp" in rows[0][1]  # sibling file as context
    assert events == [(result["status"], "model")]


def test_complete_on_an_empty_file_needs_no_model(keel, tmp_path):
    empty = tmp_path / "empty.py"
    empty.write_text("")
    out = keel("complete", str(empty), "--line", "1", "--col", "1", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["completion"] == "" and result["status"] == "empty" and "empty" in result["reason"]


@pytest.mark.parametrize("content, args, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", ("--line", "1", "--col", "1"), "not UTF-8"),
    (b"abc\x00def\n", ("--line", "1", "--col", "2"), "binary"),
    (b"one line\n", ("--line", "5", "--col", "1"), "line 5 is outside"),
    (b"one line\n", ("--line", "1", "--col", "40"), "column 40 is outside"),
])
def test_complete_refuses_bad_files_and_positions(keel, tmp_path, content, args, message):
    file = tmp_path / "bad.py"
    file.write_bytes(content)
    out = keel("complete", str(file), *args)
    assert out.returncode == 2
    assert message in out.stderr


def test_complete_on_a_missing_file(keel, tmp_path):
    out = keel("complete", str(tmp_path / "nope.py"), "--line", "1", "--col", "1")
    assert out.returncode == 2 and "does not exist" in out.stderr


def test_bench_completion_refuses_a_broken_trace(keel, tmp_path):
    trace = tmp_path / "trace.jsonl"
    trace.write_text('{"t_ms": 1, "path": "a.py", "text": "x", "cursor": 7}\n')
    out = keel("bench", "completion", "--trace", str(trace), "--json")
    assert out.returncode == 1
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["ok"] is False and "cursor inside" in report["error"]
