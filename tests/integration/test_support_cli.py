"""`keel support classify` and `keel support chat` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _keel(home: Path, *args: str, stdin: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "KEEL_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    env.pop("KEEL_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "core.cli", *args], cwd=REPO, env=env, input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def test_classify_one_message_json(tmp_path):
    done = _keel(tmp_path / "keel", "support", "classify", "Where is my order ORD-50012?", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["label"] == "ACCOUNT_ACTION" and 0 < result["confidence"] <= 1


def test_classify_file_one_object_per_line_in_order_with_bad_lines(tmp_path):
    messages = tmp_path / "messages.txt"
    messages.write_bytes(b"How long does shipping take?\n\nI want a refund\n"
                         + b"\xff\xfe\x00binary\n" + "😀😀\n".encode() + ("x" * 60_000).encode() + b"\n"
                         + b"ok \x01\x02 control\n" + b"This is the worst service ever")
    done = _keel(tmp_path / "keel", "support", "classify", "--file", str(messages), "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.strip().splitlines()]
    assert [r["line"] for r in rows] == list(range(1, 9))
    assert rows[0]["label"] == "FAQ"
    assert rows[1] == {"line": 2, "error": "empty line"}
    assert rows[2]["label"] == "BILLING"
    assert "not UTF-8" in rows[3]["error"]
    assert rows[4]["label"] == "UNKNOWN" and rows[4]["confidence"] == 0.0
    assert "label" in rows[5]  # 60,000 characters: classified, not a crash
    assert "binary" in rows[6]["error"]
    assert rows[7]["label"] == "COMPLAINT"


def test_classify_errors_are_clear(tmp_path):
    missing = _keel(tmp_path / "keel", "support", "classify", "--file", str(tmp_path / "nope.txt"), "--json")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    both = _keel(tmp_path / "keel", "support", "classify")
    assert both.returncode == 2 and "give a message or --file" in both.stderr
    empty = _keel(tmp_path / "keel", "support", "classify", "", "--json")
    assert empty.returncode == 1 and json.loads(empty.stdout) == {"error": "empty line"}


def test_chat_in_the_terminal(tmp_path):
    from tests.support.fault_server import closed_port

    home = tmp_path / "keel"
    env_llm = {"KEEL_OPENAI_BASE_URL": f"http://127.0.0.1:{closed_port()}/v1", "KEEL_LLM_MAX_RETRIES": "0",
               "KEEL_TIERS": json.dumps({"capable": ["openai/m1"]})}  # a model that never answers: fallbacks
    script = "Where is my order ORD-50008?\n/bogus\nHow long does standard shipping take?\n/human\n/quit\n"
    env = {**os.environ, "KEEL_HOME": str(home), "HF_HUB_OFFLINE": "1", **env_llm}
    env.pop("KEEL_DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-m", "core.cli", "support", "chat", "--email", "hana.hr@keel.dev"],
                          cwd=REPO, env=env, input=script, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "ORD-50008" in out and "shipped" in out
    assert "commands: /human" in out  # /bogus shows the help
    assert "Shipping times and carriers" in out  # the article fallback, since the model never answers
    assert "passed this to a person" in out
    again = subprocess.run([sys.executable, "-m", "core.cli", "support", "chat", "--email", "hana.hr@keel.dev"],
                           cwd=REPO, env=env, input="", capture_output=True, text=True, timeout=180)
    assert "(waiting)" in again.stdout and "ORD-50008" in again.stdout  # resumed from SQL after a "restart"
