"""The tool sandbox: every path a tool touches resolves under one repository root, and every process runs
from an allow-list of executables, without a shell, with a time limit (killed on expiry) and an output cap.

Nothing a diff or an agent supplies reaches a shell: arguments are passed as a list, paths are checked before
use (no absolute paths, no `..`, no symlink leading out, no shell metacharacters), and values that start
with `-` are refused so they cannot become options.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from core.review._errors import SandboxError

SHELL_METACHARACTERS = set(";&|$`<>\\\n\r\x00*?!{}()'\"")
MAX_OUTPUT_BYTES = 2_000_000
# git is not here: it runs only through core.review._repo.run_git, which keeps a repository's config from
# naming programs for git to run.
ALLOWED_EXECUTABLES = ("rg", "ruff", "bandit")


def find_executable(name: str) -> str | None:
    """The venv's own tools first (ruff, bandit are Python packages), then PATH."""
    local = Path(sys.executable).parent / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(name)


def check_text_argument(value, what: str, *, max_chars: int = 200) -> str:
    """A plain argument (a search string, a name): bounded, one line, no shell metacharacters, not an option."""
    if not isinstance(value, str) or not value.strip():
        raise SandboxError(f"{what} must be non-empty text")
    if len(value) > max_chars:
        raise SandboxError(f"{what} is longer than {max_chars} characters")
    bad = sorted(set(value) & (SHELL_METACHARACTERS - {"(", ")", "'", '"', "*", "?", "!", "{", "}"}))
    if bad:
        raise SandboxError(f"{what} {value[:60]!r} contains shell metacharacters {''.join(bad)!r}: refused")
    if value.startswith("-"):
        raise SandboxError(f"{what} {value[:60]!r} starts with '-': refused so it cannot act as an option")
    return value


@dataclass
class ProcessResult:
    argv: list[str]
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    truncated: bool
    duration_s: float
    raw: bytes = b""
    pid: int = 0


class Sandbox:
    """One repository root; tools go through `resolve` for paths and `run` for processes."""

    def __init__(self, root: Path | str, *, executables: tuple[str, ...] = ALLOWED_EXECUTABLES):
        root_path = Path(root)
        if not root_path.is_dir():
            raise SandboxError(f"sandbox root {root} is not a directory")
        self.root = root_path.resolve()
        self.executables = executables

    def resolve(self, relative, *, must_exist: bool = True) -> Path:
        """An existing path under the root, or SandboxError saying why not."""
        if not isinstance(relative, str) or not relative.strip():
            raise SandboxError("a path must be non-empty text")
        if len(relative) > 500:
            raise SandboxError("a path is at most 500 characters")
        if relative.startswith(("/", "~")) or (len(relative) > 1 and relative[1] == ":") or \
                Path(relative).is_absolute():
            raise SandboxError(f"absolute path {relative[:80]!r} refused: paths are relative to the repository root")
        parts = relative.replace("\\", "/").split("/")
        if ".." in parts:
            raise SandboxError(f"path {relative[:80]!r} refused: '..' may not leave the repository root")
        bad = sorted(set(relative) & SHELL_METACHARACTERS)
        if bad:
            raise SandboxError(f"path {relative[:80]!r} refused: it contains shell metacharacters {''.join(bad)!r}")
        if relative.startswith("-"):
            raise SandboxError(f"path {relative[:80]!r} refused: it starts with '-'")
        path = (self.root / relative).resolve()
        if path != self.root and self.root not in path.parents:
            raise SandboxError(f"path {relative[:80]!r} refused: it resolves outside the repository root "
                               "(a symlink leading out)")
        if must_exist and not path.exists():
            raise SandboxError(f"no such file in the repository: {relative[:80]}")
        return path

    def relative(self, path: Path) -> str:
        return path.resolve().relative_to(self.root).as_posix()

    async def run(self, argv: list[str], *, timeout_s: float, max_output: int = MAX_OUTPUT_BYTES,
                  env: dict[str, str] | None = None) -> ProcessResult:
        """Run an allow-listed executable in the root without a shell; kill its process group on timeout.

        The environment is built here, never inherited; `env` adds variables on top (run_git's guards)."""
        if not argv or argv[0] not in self.executables:
            raise SandboxError(f"executable {argv[0] if argv else ''!r} is not allowed "
                               f"(allowed: {', '.join(self.executables)})")
        if any(not isinstance(a, str) or "\x00" in a for a in argv):
            raise SandboxError("process arguments must be text without NUL bytes")
        exe = find_executable(argv[0])
        if exe is None:
            raise SandboxError(f"{argv[0]} is not installed (scripts/install_system_deps.sh installs it)")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": str(_tool_home()),
               "NO_COLOR": "1", "GIT_CONFIG_NOSYSTEM": "1", "RIPGREP_CONFIG_PATH": "", **(env or {})}
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            exe, *argv[1:], cwd=str(self.root), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True, env=env)
        out = bytearray()
        err = bytearray()
        truncated = False

        async def pump(stream, buffer):
            nonlocal truncated
            while chunk := await stream.read(65536):
                room = max_output - len(buffer)
                if room > 0:
                    buffer.extend(chunk[:room])
                if len(chunk) > room:
                    truncated = True
                    _kill(proc)
                    return

        timed_out = False
        try:
            await asyncio.wait_for(asyncio.gather(pump(proc.stdout, out), pump(proc.stderr, err), proc.wait()),
                                   timeout=timeout_s)
        except TimeoutError:
            timed_out = True
            _kill(proc)
        except asyncio.CancelledError:
            _kill(proc)
            raise
        finally:
            if proc.returncode is None:
                _kill(proc)
                try:
                    await asyncio.wait_for(proc.wait(), timeout=5)
                except TimeoutError:
                    pass
        return ProcessResult(argv=argv, returncode=proc.returncode, stdout=out.decode("utf-8", "replace"),
                             stderr=err.decode("utf-8", "replace")[-4000:], timed_out=timed_out,
                             truncated=truncated, duration_s=time.perf_counter() - started, raw=bytes(out),
                             pid=proc.pid)


def _tool_home() -> Path:
    """HOME for tools (bandit's plugin cache, git): under the data dir, never inside the reviewed repository."""
    from core.config import get_settings

    home = get_settings().home / "review" / "tool-home"
    home.mkdir(parents=True, exist_ok=True)
    return home


def _kill(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
