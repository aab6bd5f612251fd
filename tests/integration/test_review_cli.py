"""`keel review DIFF_FILE --repo PATH [--json]` as a user runs it: JSON comments, exports, CI exit codes, and
clear errors for bad input (missing, binary, malformed diff; repository outside the allowed roots)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.review import DEMO_REPO, get_sample

pytestmark = pytest.mark.timeout(180)
REPO = Path(__file__).resolve().parents[2]


def keel(*args, home, stdin=None):
    env = {**os.environ, "KEEL_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    env.pop("KEEL_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "core.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120, input=stdin)


def test_review_json_lists_structured_comments(tmp_path):
    diff = get_sample("01_sql_injection").diff_path
    out = keel("review", str(diff), "--repo", str(DEMO_REPO), "--json", "--no-llm", home=tmp_path / "k")
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    assert payload["verdict"] == "request_changes"
    [comment] = payload["comments"]
    assert {k: comment[k] for k in ("path", "line", "severity", "category")} == \
        {"path": "shop/orders.py", "line": 46, "severity": "blocker", "category": "security"}
    assert "SQL" in comment["message"] and comment["suggestion"]
    again = keel("review", str(diff), "--repo", str(DEMO_REPO), "--json", "--no-llm", home=tmp_path / "k")
    assert json.loads(again.stdout)["cached"] is True


def test_review_text_exports_and_fail_on(tmp_path):
    diff = get_sample("07_shell_command").diff_path
    text = keel("review", str(diff), "--repo", str(DEMO_REPO), "--no-llm", home=tmp_path / "k")
    assert text.returncode == 0 and "shop/reports.py:36" in text.stdout and "blocker · security" in text.stdout
    sarif = keel("review", str(diff), "--repo", str(DEMO_REPO), "--no-llm", "--export", "sarif", home=tmp_path / "k")
    assert json.loads(sarif.stdout)["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"][
        "startLine"] == 36
    github = keel("review", "-", "--repo", str(DEMO_REPO), "--no-llm", "--export", "github", home=tmp_path / "k",
                  stdin=diff.read_text())
    assert json.loads(github.stdout)["event"] == "REQUEST_CHANGES"
    gate = keel("review", str(diff), "--repo", str(DEMO_REPO), "--no-llm", "--fail-on", "major", home=tmp_path / "k")
    assert gate.returncode == 1
    clean = keel("review", str(get_sample("05_clean_refactor").diff_path), "--repo", str(DEMO_REPO), "--no-llm",
                 "--fail-on", "major", home=tmp_path / "k")
    assert clean.returncode == 0 and "No problems found" in clean.stdout


def test_bad_input_gives_clear_errors(tmp_path):
    home = tmp_path / "k"
    diff = get_sample("01_sql_injection").diff_path
    not_a_dir = keel("review", str(diff), "--repo", str(tmp_path / "no-such-repo"), home=home)
    assert not_a_dir.returncode == 2 and "is not a directory" in not_a_dir.stderr
    missing = keel("review", str(tmp_path / "nope.diff"), "--repo", str(DEMO_REPO), home=home)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    binary = tmp_path / "image.diff"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    out = keel("review", str(binary), "--repo", str(DEMO_REPO), home=home)
    assert out.returncode == 2 and "not UTF-8" in out.stderr
    malformed = tmp_path / "bad.diff"
    malformed.write_text("--- a/x.py\n+++ b/x.py\n@@ -1,3 +1,3 @@\n a\n")
    out = keel("review", str(malformed), "--repo", str(DEMO_REPO), home=home)
    assert out.returncode == 2 and "ends inside a hunk" in out.stderr
    assert "Traceback" not in out.stderr
