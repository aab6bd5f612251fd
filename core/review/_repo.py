"""Where a review's code comes from: the allowed repository roots, a working copy of the repository with the
diff applied (so linters and AST rules see the code as the PR leaves it), and diffs between two git refs.

The working copy lives under the data directory and is deleted after the review; only regular files are
copied (no symlinks, no .git), within a file-count and size budget.
"""

from __future__ import annotations

import asyncio
import io
import re
import shutil
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from core.config import REPO_ROOT, get_settings
from core.review._diff import Diff, FileDiff
from core.review._errors import RepoNotAllowed, ReviewError
from core.review._sandbox import Sandbox

DEMO_REPO = REPO_ROOT / "data" / "review" / "repo"
MAX_COPY_FILES = 5000
MAX_COPY_BYTES = 50_000_000
_SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", ".venv", "venv", "__pycache__", ".mypy_cache", ".ruff_cache",
              ".pytest_cache", ".tox"}
_REF = re.compile(r"^(?!-)(?!.*\.\.)(?!.*//)[A-Za-z0-9._/~^@-]{1,200}$")


def allowed_roots() -> list[Path]:
    """KEEL_REVIEW_ROOTS (os.pathsep-separated) or, by default, the demo repository's folder and the data dir."""
    settings = get_settings()
    configured = [Path(p).expanduser() for p in getattr(settings, "review_roots", ()) if p]
    roots = configured or [DEMO_REPO.parent, settings.home]
    return [r.resolve() for r in roots]


def check_repo(path: str | Path) -> Path:
    """The resolved repository directory, or RepoNotAllowed saying which roots are allowed."""
    if path is None or not str(path).strip():
        raise RepoNotAllowed("no repository given: pass the path of a local repository (--repo PATH)")
    if "\x00" in str(path):
        raise RepoNotAllowed("the repository path contains a NUL byte")
    resolved = Path(path).expanduser().resolve()
    roots = allowed_roots()
    if not any(resolved == r or r in resolved.parents for r in roots):
        raise RepoNotAllowed(f"repository {resolved} is outside the allowed roots ({', '.join(map(str, roots))}); "
                             "an administrator can add it with KEEL_REVIEW_ROOTS")
    if not resolved.is_dir():
        raise RepoNotAllowed(f"repository {resolved} is not a directory")
    return resolved


def repo_key(path: Path) -> str:
    """The name dismissals are remembered under: the demo repository (files or its git copy) is one repository."""
    resolved = path.resolve()
    if resolved == DEMO_REPO.resolve() or resolved == demo_git_dir().resolve():
        return "demo:shopline"
    return str(resolved)[:500]


def demo_git_dir() -> Path:
    return get_settings().home / "review" / "demo-git"


@dataclass
class WorkingCopy:
    root: Path
    applied: list[str]  # files the diff applied to cleanly
    approximate: list[str]  # files rebuilt from the diff alone (the diff did not match the repository)
    notices: list[str]

    def sandbox(self) -> Sandbox:
        return Sandbox(self.root)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _work_dir() -> Path:
    base = get_settings().home / "review" / "work"
    base.mkdir(parents=True, exist_ok=True)
    path = base / uuid.uuid4().hex[:16]
    path.mkdir()
    return path


def _copy_tree(source: Path, target: Path) -> list[str]:
    notices = []
    count = size = 0
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if any(part in _SKIP_DIRS for part in rel.parts) or path.is_symlink() or not path.is_file():
            continue
        count += 1
        size += path.stat().st_size
        if count > MAX_COPY_FILES or size > MAX_COPY_BYTES:
            notices.append(f"the repository is larger than {MAX_COPY_FILES:,} files / {MAX_COPY_BYTES // 10**6} MB: "
                           "tools saw only part of it")
            break
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
    return notices


def _apply(old: list[str], f: FileDiff) -> list[str] | None:
    """Apply the file's hunks to its old lines (tolerating a shifted position); None if they do not match."""
    result: list[str] = []
    cursor = 0
    for h in f.hunks:
        before = [text for kind, _, _, text in h.lines if kind in (" ", "-")]
        after = [text for kind, _, _, text in h.lines if kind in (" ", "+")]
        want = max(0, h.old_start - 1 if h.old_count else h.old_start)
        position = None
        for delta in sorted(range(-50, 51), key=abs):
            at = want + delta
            if cursor <= at <= len(old) - len(before) and old[at:at + len(before)] == before:
                position = at
                break
        if position is None:
            return None
        result.extend(old[cursor:position])
        result.extend(after)
        cursor = position + len(before)
    result.extend(old[cursor:])
    return result


def _sparse(f: FileDiff) -> list[str]:
    """The new side as far as the diff shows it, blank elsewhere, so line numbers still match the diff."""
    lines: dict[int, str] = {}
    for h in f.hunks:
        for kind, _, new, text in h.lines:
            if new is not None and kind in (" ", "+"):
                lines[new] = text
    size = max(lines, default=0)
    return [lines.get(i, "") for i in range(1, size + 1)]


def prepare_working_copy(repo: Path, diff: Diff, files: list[FileDiff], base_tar: bytes | None = None) -> WorkingCopy:
    """Copy the repository (or extract a git tree) under the data dir and apply the reviewed files' hunks."""
    root = _work_dir()
    notices: list[str] = []
    try:
        if base_tar is not None:
            with tarfile.open(fileobj=io.BytesIO(base_tar)) as tar:
                tar.extractall(root, filter="data")
        else:
            notices += _copy_tree(repo, root)
        sandbox = Sandbox(root)
        applied, approximate = [], []
        for f in files:
            if f.binary or not f.path:
                continue
            target = sandbox.resolve(f.path, must_exist=False)
            old_lines: list[str] = []
            if f.status != "added" and f.old_path:
                old_file = sandbox.resolve(f.old_path, must_exist=False)
                if old_file.is_file():
                    old_lines = old_file.read_text(encoding="utf-8", errors="replace").splitlines()
            new_lines = _apply(old_lines, f) if (old_lines or f.status == "added") else None
            if new_lines is None:
                new_lines = _sparse(f)
                approximate.append(f.path)
            else:
                applied.append(f.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("\n".join(new_lines) + "\n", encoding="utf-8")
        if approximate:
            shown = ", ".join(approximate[:5]) + (" …" if len(approximate) > 5 else "")
            notices.append(f"the diff does not match the repository for {shown}: those files were rebuilt from the "
                           "diff alone, so whole-file checks there are approximate")
        return WorkingCopy(root, applied, approximate, notices)
    except Exception:
        shutil.rmtree(root, ignore_errors=True)
        raise


# -- git ---------------------------------------------------------------------------------------------------------
#
# A reviewed repository is untrusted input, and so is its git configuration: `.git/config` can name programs git
# runs while reading (diff textconv and external diff drivers, clean/smudge/process filters, core.fsmonitor, hooks,
# core.pager, core.sshCommand, credential helpers, gpg.program, includes of other files that set any of these).
# Keel therefore never lets git read that configuration. Every git call on a reviewed repository runs against a
# throwaway "view" git directory that Keel writes itself: an empty config of its own, a copy of the refs and HEAD,
# and the repository's object store borrowed read-only through objects/info/alternates. Objects and refs are data;
# nothing in them names a program. On top of that every git call, also on repositories Keel builds itself, goes
# through `run_git`: a scrubbed environment (no system or global config, no inherited GIT_* variables, no pager,
# no prompts), `-c` overrides for the keys that run programs, and no network protocol at all.

GIT_VIEW_MAX_REF_FILES = 100_000
GIT_VIEW_MAX_REF_BYTES = 64_000_000
_GIT_GUARDS = (
    "core.quotepath=off", "core.fsmonitor=false", "core.hooksPath=/dev/null", "core.pager=cat",
    "credential.helper=", "protocol.allow=never", "core.untrackedCache=false", "diff.noprefix=false",
    "log.showSignature=false",
)
_GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_ATTR_NOSYSTEM": "1", "GIT_PAGER": "cat",
    "PAGER": "cat", "GIT_TERMINAL_PROMPT": "0", "GIT_NO_REPLACE_OBJECTS": "1", "GIT_OPTIONAL_LOCKS": "0",
    "GIT_PROTOCOL_FROM_USER": "0", "GIT_CONFIG_COUNT": "0",
}
_HEAD = re.compile(r"^(ref: refs/[A-Za-z0-9._/@+-]{1,240}|[0-9a-f]{40}|[0-9a-f]{64})$")
_OBJECT_FORMATS = {"sha1", "sha256"}


def check_ref(ref: str) -> str:
    if not isinstance(ref, str) or not _REF.match(ref.strip()):
        raise ReviewError(f"{str(ref)[:60]!r} is not a valid git ref (letters, digits, . _ / - ~ ^ @; no '..', "
                          "not starting with '-')")
    return ref.strip()


async def run_git(cwd: Path, *args: str, git_dir: Path | None = None, timeout_s: float = 30.0,
                  max_output: int = 8_000_000):
    """The one way Keel runs git: scrubbed environment, guard overrides, no network; returns the ProcessResult.

    Only `git` may run here, and only here (the tool sandbox no longer allows it), so no caller can forget a guard.
    """
    env = dict(_GIT_ENV)
    if git_dir is not None:
        env["GIT_DIR"] = str(git_dir)
    argv = ["git"]
    for guard in _GIT_GUARDS:
        argv += ["-c", guard]
    return await Sandbox(cwd, executables=("git",)).run([*argv, *args], timeout_s=timeout_s, max_output=max_output,
                                                         env=env)


def _git_dirs(repo: Path) -> tuple[Path, Path]:
    """The repository's git directory (HEAD lives here) and common directory (objects, refs), read as files."""
    dot = repo / ".git"
    if dot.is_dir():
        git_dir = dot.resolve()
    elif dot.is_file():
        text = dot.read_text(encoding="utf-8", errors="replace")[:4096].strip()
        if not text.startswith("gitdir:") or "\n" in text:
            raise ReviewError(f"{repo}/.git is a file but not a 'gitdir:' pointer")
        git_dir = (repo / text[len("gitdir:"):].strip()).resolve()
    else:
        raise ReviewError(f"{repo} is not a git repository (no .git)")
    common = git_dir
    pointer = git_dir / "commondir"
    if pointer.is_file() and not pointer.is_symlink():
        common = (git_dir / pointer.read_text(encoding="utf-8", errors="replace").strip()).resolve()
    if not (common / "objects").is_dir():
        raise ReviewError(f"{repo} is not a git repository (no object store at {common / 'objects'})")
    if "\n" in str(common) or "\r" in str(common):
        raise ReviewError("the repository's git directory has a line break in its path")
    return git_dir, common


def _copy_refs(common: Path, view: Path) -> None:
    count = size = 0
    sources = [common / "packed-refs", common / "shallow"]
    refs = common / "refs"
    if refs.is_dir() and not refs.is_symlink():
        sources += sorted(refs.rglob("*"))
    for path in sources:
        if path.is_symlink() or not path.is_file():
            continue
        count += 1
        size += path.stat().st_size
        if count > GIT_VIEW_MAX_REF_FILES or size > GIT_VIEW_MAX_REF_BYTES:
            raise ReviewError(f"the repository has more than {GIT_VIEW_MAX_REF_FILES:,} ref files or "
                              f"{GIT_VIEW_MAX_REF_BYTES // 10**6} MB of refs: too large to review")
        dest = view / path.relative_to(common)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)


async def _object_format(view: Path, common: Path) -> str:
    """The repository's object format (sha1 or sha256), read from its config as a file: no includes, no programs."""
    config = common / "config"
    if not config.is_file() or config.is_symlink():
        return "sha1"
    result = await run_git(view, "config", "--file", str(config), "--no-includes", "--get",
                           "extensions.objectformat", git_dir=view, timeout_s=10, max_output=10_000)
    value = result.stdout.strip().lower() if result.returncode == 0 else "sha1"
    if value not in _OBJECT_FORMATS:
        raise ReviewError(f"the repository uses object format {value[:20]!r}, which Keel cannot read")
    return value


class GitView:
    """A git directory Keel owns that reads a reviewed repository's objects and refs but none of its config."""

    def __init__(self, repo: Path):
        self.repo = repo
        self.path: Path | None = None

    async def __aenter__(self) -> GitView:
        git_dir, common = _git_dirs(self.repo)
        base = get_settings().home / "review" / "git-view"
        base.mkdir(parents=True, exist_ok=True)
        view = base / uuid.uuid4().hex[:16]
        view.mkdir()
        self.path = view
        try:
            (view / "objects" / "info").mkdir(parents=True)
            (view / "objects" / "info" / "alternates").write_text(f"{common / 'objects'}\n", encoding="utf-8")
            (view / "refs").mkdir()
            (view / "config").write_text("[core]\n\trepositoryformatversion = 0\n\tbare = true\n", encoding="utf-8")
            head = (git_dir / "HEAD").read_text(encoding="utf-8", errors="replace")[:300].strip() \
                if (git_dir / "HEAD").is_file() else ""
            (view / "HEAD").write_text((head if _HEAD.match(head) else "ref: refs/heads/main") + "\n",
                                       encoding="utf-8")
            fmt = await _object_format(view, common)
            if fmt != "sha1":
                (view / "config").write_text("[core]\n\trepositoryformatversion = 1\n\tbare = true\n"
                                             f"[extensions]\n\tobjectformat = {fmt}\n", encoding="utf-8")
            await asyncio.to_thread(_copy_refs, common, view)
            return self
        except BaseException:
            shutil.rmtree(view, ignore_errors=True)
            raise

    async def __aexit__(self, *exc) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)

    async def run(self, *args: str, timeout_s: float = 30.0, max_output: int = 8_000_000):
        if self.path is None:  # the view exists only inside `async with GitView(repo)`
            raise ReviewError("GitView.run called outside `async with GitView(...)`: the view is not set up")
        return await run_git(self.path, *args, git_dir=self.path, timeout_s=timeout_s, max_output=max_output)


async def _git(repo: Path, *args: str, timeout_s: float = 30.0, max_output: int = 8_000_000, raw: bool = False):
    """Run a read-only git command on a reviewed repository through a GitView; ReviewError on any failure."""
    async with GitView(repo) as view:
        result = await view.run(*args, timeout_s=timeout_s, max_output=max_output)
    if result.timed_out:
        raise ReviewError(f"git {args[0]} took longer than {timeout_s:.0f} s")
    if result.returncode != 0:
        raise ReviewError(f"git {args[0]} failed: {result.stderr.strip()[:300] or 'exit ' + str(result.returncode)}")
    if result.truncated:
        raise ReviewError(f"git {args[0]} output is larger than {max_output // 10**6} MB")
    return result.raw if raw else result.stdout


async def git_refs(repo: Path) -> list[str]:
    out = await _git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads", "refs/tags")
    return [line for line in out.splitlines() if line]


async def git_diff(repo: Path, base: str, head: str) -> str:
    return await _git(repo, "diff", "--no-color", "--no-ext-diff", "--no-textconv", "--src-prefix=a/",
                      "--dst-prefix=b/", "--end-of-options", check_ref(base), check_ref(head))


async def git_archive(repo: Path, ref: str) -> bytes:
    return await _git(repo, "archive", "--format=tar", "--end-of-options", check_ref(ref), timeout_s=60,
                      max_output=MAX_COPY_BYTES, raw=True)


def run_sync(coro):
    """Run a coroutine from synchronous code, also when the caller's thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
