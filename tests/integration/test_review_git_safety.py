"""A reviewed repository's git config must never make Keel run a program (issue 13, item 1).

Each case plants one config key that names a command writing a marker file into a real repository, reviews its
refs through the real code path (list_refs, review_refs: git for-each-ref, diff and archive), and asserts that the
marker never appears and that the review still works. A control test shows the planted config is live: plain git
on the same repository does run it, so these tests fail if Keel ever reads that config again.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from core.review import ReviewOptions, list_refs, review_refs
from core.review._errors import SandboxError
from core.review._sandbox import Sandbox

pytestmark = pytest.mark.timeout(300)
TOOLS_ONLY = ReviewOptions(use_llm=False, use_cache=False)
CLEAN_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1",
             "GIT_CONFIG_GLOBAL": "/dev/null", "LANG": "C.UTF-8"}


def git(repo: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args], cwd=repo,
                          env={**CLEAN_ENV, **(env or {})}, capture_output=True, text=True, timeout=60)


def make_repo(keel_home: Path) -> Path:
    """main with one module, and a feature branch that changes it (and a .gitattributes naming drivers)."""
    repo = keel_home / "hostile"
    (repo / "app").mkdir(parents=True)
    (repo / "app" / "calc.py").write_text("def total(items):\n    return sum(items)\n")
    (repo / ".gitattributes").write_text("*.py diff=evil filter=evil merge=evil\n")
    assert git(repo, "init", "-q", "-b", "main").returncode == 0
    git(repo, "add", "-A")
    assert git(repo, "commit", "-q", "-m", "base").returncode == 0
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "app" / "calc.py").write_text(
        "def total(items):\n    result = 0\n    for i in range(len(items)):\n        result += items[i]\n"
        "    return result\n")
    git(repo, "commit", "-q", "-a", "-m", "loop")
    git(repo, "checkout", "-q", "main")
    return repo


def _plant(repo: Path, markers: Path, key: str) -> None:
    """Set `key` in the repository's own config to something that runs a command touching markers/<name>."""
    marker = markers / key.replace("/", "_")
    touch = f"touch {marker}"
    config = repo / ".git" / "config"

    def put(name: str, value: str, file: Path = config) -> None:
        assert git(repo, "config", "--file", str(file), name, value).returncode == 0

    if key == "core.hooksPath":
        hooks = repo / ".git" / "evil-hooks"
        hooks.mkdir()
        for name in ("pre-commit", "post-checkout", "reference-transaction", "pre-auto-gc", "post-index-change",
                     "fsmonitor-watchman", "push-to-checkout", "pre-push", "post-rewrite"):
            (hooks / name).write_text(f"#!/bin/sh\n{touch}\n")
            (hooks / name).chmod(0o755)
        put("core.hooksPath", str(hooks))
    elif key in ("include.path", "includeIf"):
        extra = repo / ".git" / "extra.cfg"
        put("diff.evil.textconv", f"{touch}; cat", extra)
        put("filter.evil.smudge", f"{touch}; cat", extra)
        put("include.path" if key == "include.path" else "includeIf.gitdir:/**.path", str(extra))
    elif key == "diff.evil.textconv":
        put(key, f"{touch}; cat")
        put("diff.evil.cachetextconv", "false")
    elif key == "filter.evil.process":
        put(key, f"sh -c '{touch}; exit 1'")
        put("filter.evil.required", "false")
    elif key == "log.showSignature":
        put("log.showSignature", "true")
        put("gpg.program", f"sh -c '{touch}'")
    elif key == "credential.helper":
        put(key, f"!{touch}; false")
    else:  # a command string: diff.external, diff.evil.command, filter clean/smudge, pager, ssh, fsmonitor, ...
        put(key, f"{touch}; cat")


EXEC_KEYS = [
    "diff.evil.textconv", "diff.evil.command", "diff.external", "filter.evil.smudge", "filter.evil.clean",
    "filter.evil.process", "core.fsmonitor", "core.hooksPath", "core.pager", "pager.diff", "pager.archive",
    "core.sshCommand", "credential.helper", "gpg.program", "log.showSignature", "core.alternateRefsCommand",
    "core.askPass", "core.editor", "sequence.editor", "merge.evil.driver", "uploadpack.packObjectsHook",
    "include.path", "includeIf",
]


@pytest.mark.parametrize("key", EXEC_KEYS)
def test_a_config_key_that_names_a_program_never_runs_it(keel_home, tmp_path, key):
    repo = make_repo(keel_home)
    markers = tmp_path / "markers"
    markers.mkdir()
    _plant(repo, markers, key)
    assert {"main", "feature"} <= set(list_refs(repo))
    result = review_refs(repo, "main", "feature", TOOLS_ONLY)
    assert [f["path"] for f in result.files] == ["app/calc.py"]
    assert "+    for i in range(len(items)):" in result.diff_text  # the raw diff, not a textconv of it
    assert list(markers.iterdir()) == [], f"{key} ran a program during the review"


@pytest.mark.parametrize("key", ["diff.evil.textconv", "filter.evil.smudge", "include.path"])
def test_control_plain_git_on_the_same_repository_does_run_the_planted_command(keel_home, tmp_path, key):
    """Proves the planted config is live, so the test above fails if Keel reads the repository's config."""
    repo = make_repo(keel_home)
    markers = tmp_path / "markers"
    markers.mkdir()
    _plant(repo, markers, key)
    if key == "filter.evil.smudge":
        git(repo, "archive", "--format=tar", "-o", str(tmp_path / "out.tar"), "main")
    else:
        git(repo, "diff", "--no-ext-diff", "main", "feature")
    assert list(markers.iterdir()) != []


def test_inherited_git_environment_is_ignored(keel_home, tmp_path, monkeypatch):
    repo = make_repo(keel_home)
    marker = tmp_path / "env-marker"
    evil_config = tmp_path / "evil.gitconfig"
    evil_config.write_text(f"[diff \"evil\"]\n\ttextconv = touch {marker}; cat\n")
    monkeypatch.setenv("GIT_EXTERNAL_DIFF", f"touch {marker}; false")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(evil_config))
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "core.pager")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", f"touch {marker}; cat")
    monkeypatch.setenv("GIT_PAGER", f"touch {marker}; cat")
    result = review_refs(repo, "main", "feature", TOOLS_ONLY)
    assert result.files and not marker.exists()


def test_output_shaping_config_cannot_break_the_diff(keel_home):
    """The repository's config no longer reaches git at all, so it cannot change what Keel parses either."""
    repo = make_repo(keel_home)
    for name, value in (("diff.noprefix", "true"), ("color.ui", "always"), ("color.diff", "always"),
                        ("diff.mnemonicPrefix", "true"), ("core.quotePath", "true")):
        git(repo, "config", name, value)
    result = review_refs(repo, "main", "feature", TOOLS_ONLY)
    assert [f["path"] for f in result.files] == ["app/calc.py"]
    assert "\x1b[" not in result.diff_text


def test_a_linked_worktree_is_reviewed_through_its_common_directory(keel_home, tmp_path):
    repo = make_repo(keel_home)
    worktree = keel_home / "hostile-wt"
    assert git(repo, "worktree", "add", "-q", str(worktree), "feature").returncode == 0
    assert (worktree / ".git").is_file()
    markers = tmp_path / "markers"
    markers.mkdir()
    _plant(repo, markers, "diff.evil.textconv")
    assert {"main", "feature"} <= set(list_refs(worktree))
    result = review_refs(worktree, "main", "feature", TOOLS_ONLY)
    assert [f["path"] for f in result.files] == ["app/calc.py"] and list(markers.iterdir()) == []


def test_the_reviewed_repository_is_left_untouched(keel_home):
    repo = make_repo(keel_home)
    before = sorted((p.relative_to(repo).as_posix(), p.stat().st_mtime_ns) for p in (repo / ".git").rglob("*"))
    review_refs(repo, "main", "feature", TOOLS_ONLY)
    after = sorted((p.relative_to(repo).as_posix(), p.stat().st_mtime_ns) for p in (repo / ".git").rglob("*"))
    assert before == after
    assert not any((keel_home / "review" / "git-view").iterdir())  # every view directory was removed


def test_tools_cannot_run_git_and_only_run_git_builds_a_git_command(tmp_path):
    with pytest.raises(SandboxError, match="not allowed"):
        from core.review._repo import run_sync  # also when e2e tests left a loop running in this thread

        run_sync(Sandbox(tmp_path).run(["git", "status"], timeout_s=5))
    core = Path(__file__).resolve().parents[2] / "core" / "review"
    offenders = [p.name for p in core.glob("*.py")
                 if p.name != "_repo.py" and ('["git"' in p.read_text() or "'git'," in p.read_text())]
    assert offenders == []


def test_a_git_view_used_outside_its_async_with_says_so(tmp_path):
    """Before `async with`, the view has no directory: running git there would use no GIT_DIR at all."""
    from core.review._errors import ReviewError
    from core.review._repo import GitView, run_sync

    with pytest.raises(ReviewError, match="outside `async with GitView"):
        run_sync(GitView(tmp_path).run("status"))
