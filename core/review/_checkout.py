"""Which side of the PR a repository is checked out at, and the working copy the tools read.

CI checks the code out at the PR's head; a developer often has the base. A review must work from either, so each
reviewed file is matched against the diff both ways: its hunks' old side found in the file means the file is at the
base (apply the hunks), their new side found means it is already at the head (read it as it is). Only a file that
matches neither way is rebuilt from the diff alone, and the notice names it.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from enum import StrEnum
from pathlib import Path

from core.review._diff import Diff, FileDiff
from core.review._repo import WorkingCopy, _apply, _copy_tree, _sparse, _work_dir
from core.review._sandbox import Sandbox


class Side(StrEnum):
    BASE = "base"  # the file is as before the PR: the diff applies forward
    HEAD = "head"  # the file is as the PR leaves it: the diff applies in reverse
    NEITHER = "neither"  # rebuilt from the diff alone


def _reverse(f: FileDiff) -> FileDiff:
    """The same file diff with old and new sides swapped (what `git apply --reverse` applies)."""
    from core.review._diff import Hunk

    swap = {" ": " ", "+": "-", "-": "+"}
    hunks = [Hunk(h.new_start, h.new_count, h.old_start, h.old_count, h.header,
                  [(swap[kind], new, old, text) for kind, old, new, text in h.lines]) for h in f.hunks]
    return FileDiff(path=f.old_path, old_path=f.path, status=f.status, hunks=hunks, binary=f.binary)


def file_side(current: list[str] | None, f: FileDiff) -> tuple[Side, list[str]]:
    """(which side `current` is at, the file's lines as the PR leaves it). `current` is None when it is absent."""
    if f.status == "added" or not f.old_path:
        if current is None:
            return Side.BASE, _apply([], f) or _sparse(f)
        after = _apply([], f)
        if after is not None and [line.rstrip() for line in current] == [line.rstrip() for line in after]:
            return Side.HEAD, current
        return Side.NEITHER, _sparse(f)
    if current is None:
        return Side.NEITHER, _sparse(f)
    forward = _apply(current, f)
    if forward is not None:
        # A hunk that only adds lines applies to either side; the reverse check decides when both fit.
        if _apply(current, _reverse(f)) is not None and _only_additions(f) and _contains_new_side(current, f):
            return Side.HEAD, current
        return Side.BASE, forward
    if _apply(current, _reverse(f)) is not None:
        return Side.HEAD, current
    return Side.NEITHER, _sparse(f)


def _only_additions(f: FileDiff) -> bool:
    return all(kind != "-" for h in f.hunks for kind, *_ in h.lines)


def _contains_new_side(current: list[str], f: FileDiff) -> bool:
    """Every hunk's added block is already in the file at its new position: the file is at the head."""
    for h in f.hunks:
        for kind, _, new, text in h.lines:
            if kind == "+" and new is not None and (new > len(current) or current[new - 1] != text):
                return False
    return True


def prepare_checkout(repo: Path, diff: Diff, files: list[FileDiff], tree_tar: bytes | None = None) -> WorkingCopy:
    """Copy the repository (or extract a git tree) under the data dir and bring each reviewed file to the PR's
    head, whichever side it was checked out at. `WorkingCopy.applied` lists base-side files, `at_head` head-side."""
    root = _work_dir()
    notices: list[str] = []
    try:
        if tree_tar is not None:
            with tarfile.open(fileobj=io.BytesIO(tree_tar)) as tar:
                tar.extractall(root, filter="data")
        else:
            notices += _copy_tree(repo, root)
        sandbox = Sandbox(root)
        applied: list[str] = []
        at_head: list[str] = []
        approximate: list[str] = []
        for f in files:
            if f.binary or not f.path:
                continue
            target = sandbox.resolve(f.path, must_exist=False)
            source = sandbox.resolve(f.old_path, must_exist=False) if f.old_path else target
            current = None
            for candidate in (source, target):
                if candidate.is_file():
                    current = candidate.read_text(encoding="utf-8", errors="replace").splitlines()
                    break  # a rename checked out at the head has only the new path
            side, lines = file_side(current, f)
            {Side.BASE: applied, Side.HEAD: at_head, Side.NEITHER: approximate}[side].append(f.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("\n".join(lines) + "\n", encoding="utf-8")
        if at_head:
            shown = ", ".join(at_head[:5]) + (" …" if len(at_head) > 5 else "")
            notices.append(f"the repository is at the PR's head for {shown}: those files were read as they are")
        if approximate:
            shown = ", ".join(approximate[:5]) + (" …" if len(approximate) > 5 else "")
            notices.append(f"the diff matches neither the base nor the head of the repository for {shown}: those "
                           "files were rebuilt from the diff alone, so whole-file checks there are approximate")
        copy = WorkingCopy(root, applied, approximate, notices)
        copy.at_head = at_head  # type: ignore[attr-defined]
        return copy
    except Exception:
        shutil.rmtree(root, ignore_errors=True)
        raise


# -- a git repository and two refs (the CI way: `origin/main...HEAD`) -----------------------------------------------

DEFAULT_BASES = ("origin/main", "origin/master", "main", "master")


async def _ref_exists(repo: Path, ref: str) -> bool:
    from core.review._errors import ReviewError
    from core.review._repo import _git, check_ref

    try:
        await _git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", check_ref(ref), timeout_s=10)
    except ReviewError:
        return False
    return True


async def default_base(repo: Path) -> str:
    """The branch a PR is usually compared with: the first of origin/main, origin/master, main, master that exists."""
    from core.review._errors import ReviewError

    for ref in DEFAULT_BASES:
        if await _ref_exists(repo, ref):
            return ref
    raise ReviewError(f"none of {', '.join(DEFAULT_BASES)} exists in {repo}: pass --base REF")


async def merge_base(repo: Path, base: str, head: str) -> str:
    """The commit `git diff base...head` compares against: where head's branch left base."""
    from core.review._repo import _git, check_ref

    out = await _git(repo, "merge-base", "--end-of-options", check_ref(base), check_ref(head), timeout_s=30)
    return out.strip().splitlines()[0]


def split_range(text: str) -> tuple[str, str]:
    """`A...B` or `A..B` → (A, B); both sides are checked as refs by the git calls."""
    from core.review._errors import ReviewError

    for sep in ("...", ".."):
        if sep in text:
            base, head = text.split(sep, 1)
            return base.strip() or "HEAD", head.strip() or "HEAD"
    raise ReviewError(f"{text[:60]!r} is not a commit range (expected BASE...HEAD, e.g. origin/main...HEAD)")
