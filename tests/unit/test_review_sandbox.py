"""The tool sandbox: escapes are refused (.., absolute paths, symlinks out, shell metacharacters, option
injection), a hanging process is killed at its limit, and every tool failure comes back to the agent as data."""

from __future__ import annotations

import os
import time

import pytest

from core.review import Sandbox, SandboxError, ToolCall, ToolSpec, execute
from core.review._repo import run_sync
from core.review._sandbox import ProcessResult


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "mod.py").write_text("def hello(name):\n    return f'hi {name}'\n\n\nx = hello('a')\n")
    (tmp_path / "secret.txt").write_text("top secret\n")
    os.symlink(tmp_path / "secret.txt", root / "leak.txt")
    os.symlink(tmp_path, root / "outside")
    return root


def run(coro):
    # the e2e browser fixture (Playwright's sync API) keeps an event loop running in this thread for the session
    return run_sync(coro)


@pytest.mark.parametrize("path, reason", [
    ("../secret.txt", "'..'"),
    ("pkg/../../secret.txt", "'..'"),
    ("/etc/passwd", "absolute"),
    ("~/.ssh/id_rsa", "absolute"),
    ("leak.txt", "outside the repository root"),
    ("outside/secret.txt", "outside the repository root"),
    ("pkg/mod.py; rm -rf /", "shell metacharacters"),
    ("$(whoami).py", "shell metacharacters"),
    ("pkg/`id`.py", "shell metacharacters"),
    ("-rf", "starts with '-'"),
    ("", "non-empty"),
])
def test_paths_that_leave_the_root_are_refused(repo, path, reason):
    with pytest.raises(SandboxError, match=reason):
        Sandbox(repo).resolve(path)


def test_paths_inside_the_root_resolve(repo):
    sandbox = Sandbox(repo)
    assert sandbox.resolve("pkg/mod.py") == (repo / "pkg" / "mod.py").resolve()
    assert sandbox.resolve("./pkg//mod.py") == (repo / "pkg" / "mod.py").resolve()


@pytest.mark.parametrize("call, status, reason", [
    (ToolCall("read_lines", {"path": "../secret.txt"}), "refused", "'..'"),
    (ToolCall("read_lines", {"path": "/etc/passwd"}), "refused", "absolute"),
    (ToolCall("read_lines", {"path": "leak.txt"}), "refused", "outside"),
    (ToolCall("search_codebase", {"query": "hello; cat /etc/passwd"}), "refused", "shell metacharacters"),
    (ToolCall("search_codebase", {"query": "$(id)"}), "refused", "shell metacharacters"),
    (ToolCall("search_codebase", {"query": "--pre=sh"}), "refused", "option"),
    (ToolCall("search_codebase", {"query": "x", "path": "../"}), "refused", "'..'"),
    (ToolCall("run_linter", {"paths": ["pkg/mod.py", "|id"], "linter": "ruff"}), "refused", "shell"),
    (ToolCall("run_linter", {"paths": ["pkg/mod.py"], "linter": "sh"}), "refused", "unknown linter"),
    (ToolCall("get_function_definition", {"name": "os.system('id')"}), "refused", "identifier"),
    (ToolCall("format_disk", {}), "refused", "unknown tool"),
    (ToolCall("read_lines", {"path": "pkg/mod.py", "bogus": 1}), "error", "bad arguments"),
])
def test_tool_errors_come_back_as_data(repo, call, status, reason):
    result = run(execute(Sandbox(repo), call, clock_start=time.perf_counter()))
    assert result.status == status, result.error
    assert reason in result.error
    assert result.data is None
    assert "top secret" not in str(result.as_dict())


def test_tools_work_inside_the_root(repo):
    sandbox = Sandbox(repo)
    clock = time.perf_counter()
    search = run(execute(sandbox, ToolCall("search_codebase", {"query": "hello("}), clock_start=clock))
    assert search.status == "ok" and {(h["path"], h["line"]) for h in search.data} == {("pkg/mod.py", 1),
                                                                                         ("pkg/mod.py", 5)}
    assert "secret" not in str(search.data)  # rg does not follow the symlinks out of the root
    definition = run(execute(sandbox, ToolCall("get_function_definition", {"name": "hello"}), clock_start=clock))
    assert definition.data[0]["start"] == 1 and "return f'hi {name}'" in definition.data[0]["source"]
    lines = run(execute(sandbox, ToolCall("read_lines", {"path": "pkg/mod.py", "start": 5, "end": 9}),
                        clock_start=clock))
    assert lines.data["lines"] == ["x = hello('a')"]
    lint = run(execute(sandbox, ToolCall("run_linter", {"paths": ["pkg/mod.py"], "linter": "ruff"}),
                       clock_start=clock))
    assert lint.status == "ok" and lint.data == []


def test_only_allow_listed_executables_run(repo):
    with pytest.raises(SandboxError, match="not allowed"):
        run(Sandbox(repo).run(["sh", "-c", "id"], timeout_s=5))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead for our purposes
        return stat.read().split()[2] != "Z"


def test_a_hanging_process_is_killed_at_its_limit(repo):
    sandbox = Sandbox(repo, executables=("sleep",))
    started = time.perf_counter()
    result: ProcessResult = run(sandbox.run(["sleep", "30"], timeout_s=0.5))
    elapsed = time.perf_counter() - started
    assert result.timed_out and elapsed < 5
    assert not _alive(result.pid)


def test_a_hanging_tool_is_cut_off_and_reported(repo):
    async def hang(sandbox, timeout_s):
        result = await sandbox.run(["sleep", "30"], timeout_s=timeout_s)
        if result.timed_out:
            raise TimeoutError(f"sleep ran over its {timeout_s} s limit and was killed (pid {result.pid})")

    tools = {"hang": ToolSpec("hang", hang, 0.5, "never finishes")}
    started = time.perf_counter()
    result = run(execute(Sandbox(repo, executables=("sleep",)), ToolCall("hang", {}), clock_start=started,
                         tools=tools))
    assert result.status == "timeout" and "killed" in result.error
    assert time.perf_counter() - started < 5
    assert not _alive(int(result.error.split("pid ")[1].rstrip(")")))


def test_output_is_capped(repo):
    big = repo / "big.py"
    big.write_text("needle = 1\n" * 200_000)
    result = run(Sandbox(repo).run(["rg", "--json", "needle", "big.py"], timeout_s=20, max_output=10_000))
    assert result.truncated and len(result.stdout) <= 10_000
