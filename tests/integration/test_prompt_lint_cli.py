"""`keel prompts lint` as a real subprocess: exit codes, --json, file and folder paths, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLEAN = ("---\ndescription: Clean.\ntier: fast\nmax_tokens: 100\n---\n"
         "## system\nYou are a helpful assistant.\n\n## user\n<data>\n{text}\n</data>\n")


@pytest.fixture
def keel(tmp_path):
    env = {**os.environ, "KEEL_HOME": str(tmp_path / "keel"), "HF_HUB_OFFLINE": "1"}
    env.pop("KEEL_DATABASE_URL", None)
    env.pop("KEEL_EMBEDDED_CTX", None)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "core.cli", "prompts", "lint", *args], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=120)

    return run


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "lintme"
    d.mkdir()
    (d / "clean.md").write_text(CLEAN, encoding="utf-8")
    (d / "pii.md").write_text(CLEAN.replace("helpful assistant.", "helpful assistant for jane.doe@gmail.com."),
                              encoding="utf-8")
    (d / "spaces.md").write_text(CLEAN.replace("helpful assistant.", "helpful assistant. "), encoding="utf-8")
    return d


def test_shipped_prompts_lint_clean(keel):
    out = keel()
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout == ""
    out = keel("prompts", "--json")
    assert out.returncode == 0 and json.loads(out.stdout) == []


def test_clean_file_exits_zero(keel, folder):
    out = keel(str(folder / "clean.md"))
    assert (out.returncode, out.stdout) == (0, "")
    assert out.stderr.strip() == "prompt lint: 0 error(s), 0 warning(s)"


def test_error_file_exits_non_zero_with_path_and_line(keel, folder):
    out = keel(str(folder / "pii.md"))
    assert out.returncode == 1
    assert out.stdout.strip() == f"{folder / 'pii.md'}:7: error pii-email: email address 'jane.doe@gmail.com'"


def test_warnings_alone_exit_zero(keel, folder):
    out = keel(str(folder / "spaces.md"))
    assert out.returncode == 0
    assert out.stdout.strip().endswith("spaces.md:7: warning trailing-whitespace: trailing whitespace")


def test_folder_and_json(keel, folder):
    out = keel(str(folder), "--json")
    assert out.returncode == 1
    findings = json.loads(out.stdout)
    assert [(Path(f["file"]).name, f["line"], f["severity"], f["rule"]) for f in findings] == [
        ("pii.md", 7, "error", "pii-email"), ("spaces.md", 7, "warning", "trailing-whitespace")]
    assert set(findings[0]) == {"file", "line", "severity", "rule", "message"}


def test_missing_path_is_a_clear_error(keel, folder):
    out = keel(str(folder / "clean.md"), str(folder / "nope.md"))
    assert out.returncode == 2
    assert "no such file or folder" in out.stderr and "nope.md" in out.stderr
    assert "Traceback" not in out.stderr


def test_non_utf8_file_is_a_finding_not_a_traceback(keel, tmp_path):
    bad = tmp_path / "latin1.txt"  # any file given explicitly is linted, whatever its name
    bad.write_bytes(b"---\ndescription: caf\xe9\n---\n## user\n{text}\n")
    out = keel(str(bad), "--json")
    assert out.returncode == 1, out.stderr
    [finding] = json.loads(out.stdout)
    assert (finding["rule"], finding["line"], finding["severity"]) == ("encoding", 2, "error")
    assert "Traceback" not in out.stderr


def test_update_lock_then_change(keel, folder):
    (folder / "pii.md").unlink()
    (folder / "spaces.md").unlink()
    (folder / "versions.lock").write_text("", encoding="utf-8")
    out = keel(str(folder))
    assert out.returncode == 1 and "version-unlocked" in out.stdout
    out = keel(str(folder), "--update-lock")
    assert out.returncode == 0, out.stdout + out.stderr
    (folder / "clean.md").write_text(CLEAN.replace("helpful", "kind"), encoding="utf-8")
    out = keel(str(folder / "clean.md"))
    assert out.returncode == 1 and "clean.md:1: error version-changed" in out.stdout
