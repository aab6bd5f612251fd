"""Unified diffs: parse `git diff` / `diff -u` output into files, hunks and the new-side lines each PR adds.

Reviews comment only on added or changed lines, so the parser's main product is, per file, the set of new-side
line numbers the PR added. Malformed input fails with the line that broke it; binary files are kept as
entries with no lines (and a notice), never decoded.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from core.review._errors import DiffError

MAX_DIFF_BYTES = 4_000_000
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$")
_GIT_HEADER = re.compile(r"^diff --git (\S+) (\S+)$")


@dataclass
class Hunk:
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    header: str
    # (kind, old_line or None, new_line or None, text); kind is " " context, "+" added, "-" removed
    lines: list[tuple[str, int | None, int | None, str]] = field(default_factory=list)


@dataclass
class FileDiff:
    path: str  # the new path ("" for a deleted file: see old_path)
    old_path: str
    status: str = "modified"  # added | deleted | modified | renamed | binary
    hunks: list[Hunk] = field(default_factory=list)
    binary: bool = False

    @property
    def added(self) -> dict[int, str]:
        """New-side line number → text of every line this PR adds or changes."""
        return {new: text for h in self.hunks for kind, _, new, text in h.lines if kind == "+" and new is not None}

    @property
    def reviewable(self) -> dict[int, str]:
        """Added lines minus those only re-indented or moved within their hunk (same text as a removed line):
        a review comments on what the PR changes, not on code it merely shifted."""
        result = {}
        for h in self.hunks:
            removed = {"".join(text.split()) for kind, _, _, text in h.lines if kind == "-"}
            for kind, _, new, text in h.lines:
                if kind == "+" and new is not None and ("".join(text.split()) not in removed or not text.strip()):
                    result[new] = text
        return result

    @property
    def after_removals(self) -> dict[int, str]:
        """New-side line → text of the first line after each block of removed lines (where a deletion shows)."""
        result = {}
        for h in self.hunks:
            pending = False
            for kind, _, new, text in h.lines:
                if kind == "-":
                    pending = True
                elif pending and new is not None:
                    result[new] = text
                    pending = False
        return result

    @property
    def removed_count(self) -> int:
        return sum(1 for h in self.hunks for kind, *_ in h.lines if kind == "-")

    @property
    def display_path(self) -> str:
        return self.path or self.old_path


@dataclass
class Diff:
    files: list[FileDiff]
    text: str

    @property
    def hash(self) -> str:
        return diff_hash(self.text)

    @property
    def added_lines(self) -> int:
        return sum(len(f.added) for f in self.files)

    @property
    def removed_lines(self) -> int:
        return sum(f.removed_count for f in self.files)

    def file(self, path: str) -> FileDiff | None:
        return next((f for f in self.files if f.path == path), None)


def diff_hash(text: str) -> str:
    """SHA-256 of the diff with line endings normalised, so CRLF and LF copies of one diff share a cache entry."""
    normal = text.replace("\r\n", "\n").strip("\n") + "\n"
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()


def decode_diff(data: bytes | str) -> str:
    """Text of an uploaded diff, or a DiffError: NUL bytes or non-UTF-8 mean it is not a text diff."""
    if isinstance(data, str):
        text = data
    else:
        if len(data) > MAX_DIFF_BYTES:
            raise DiffError(f"the diff is {len(data):,} bytes; the limit is {MAX_DIFF_BYTES:,}")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DiffError(f"the diff is not UTF-8 text (bad byte at offset {exc.start}); a binary file is not "
                            "a diff") from None
    if "\x00" in text:
        raise DiffError("the diff contains NUL bytes: it looks like a binary file, not a unified diff")
    if len(text) > MAX_DIFF_BYTES:
        raise DiffError(f"the diff is {len(text):,} characters; the limit is {MAX_DIFF_BYTES:,}")
    return text.replace("\r\n", "\n")


def _strip_prefix(path: str) -> str:
    path = path.split("\t", 1)[0].strip()
    if path.startswith('"') and path.endswith('"'):
        path = path[1:-1]
    if path == "/dev/null":
        return ""
    if path[:2] in ("a/", "b/"):
        return path[2:]
    return path


def parse_diff(data: bytes | str) -> Diff:
    """Parse a unified diff (git or plain `diff -u`); raises DiffError naming the first line that does not fit."""
    text = decode_diff(data)
    if not text.strip():
        raise DiffError("the diff is empty")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    files: list[FileDiff] = []
    current: FileDiff | None = None
    hunk: Hunk | None = None
    old_line = new_line = old_left = new_left = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        number = i + 1
        if hunk is not None and (old_left > 0 or new_left > 0):
            kind = line[:1]
            body = line[1:]
            if line.startswith("\\"):  # "\ No newline at end of file"
                i += 1
                continue
            if kind == " " or line == "":
                hunk.lines.append((" ", old_line, new_line, body))
                old_line += 1
                new_line += 1
                old_left -= 1
                new_left -= 1
            elif kind == "-":
                hunk.lines.append(("-", old_line, None, body))
                old_line += 1
                old_left -= 1
            elif kind == "+":
                hunk.lines.append(("+", None, new_line, body))
                new_line += 1
                new_left -= 1
            else:
                raise DiffError(f"line {number}: the hunk at line {number - len(hunk.lines) - 1} promised "
                                f"{hunk.old_count} old and {hunk.new_count} new lines but ended early")
            if old_left < 0 or new_left < 0:
                raise DiffError(f"line {number}: more lines than the hunk header @@ -{hunk.old_start},"
                                f"{hunk.old_count} +{hunk.new_start},{hunk.new_count} @@ announced")
            i += 1
            continue
        hunk = None
        git = _GIT_HEADER.match(line)
        if git:
            current = FileDiff(path=_strip_prefix(git.group(2)), old_path=_strip_prefix(git.group(1)))
            files.append(current)
        elif line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            old, new = _strip_prefix(line[4:]), _strip_prefix(lines[i + 1][4:])
            if current is None or current.hunks or (current.path and new and current.path != new):
                current = FileDiff(path=new, old_path=old)
                files.append(current)
            current.path, current.old_path = new, old
            if not old:
                current.status = "added"
            elif not new:
                current.status = "deleted"
            elif old != new:
                current.status = "renamed"
            i += 2
            continue
        elif line.startswith("@@"):
            match = _HUNK.match(line)
            if match is None:
                raise DiffError(f"line {number}: malformed hunk header {line[:80]!r}")
            if current is None:
                raise DiffError(f"line {number}: a hunk before any file header (--- a/... +++ b/...)")
            old_start, old_count, new_start, new_count = (int(match.group(k)) if match.group(k) is not None else 1
                                                          for k in (1, 2, 3, 4))
            hunk = Hunk(old_start, old_count, new_start, new_count, match.group(5).strip())
            current.hunks.append(hunk)
            old_line, new_line, old_left, new_left = old_start, new_start, old_count, new_count
        elif line.startswith("Binary files ") or line.startswith("GIT binary patch"):
            if current is None:
                raise DiffError(f"line {number}: a binary marker before any file header")
            current.binary, current.status = True, "binary"
            if line.startswith("Binary files "):
                names = re.match(r"Binary files (.+?) and (.+?) differ", line)
                if names and not current.path:
                    current.path = _strip_prefix(names.group(2))
        elif current is not None and current.binary and line.startswith(("literal ", "delta ")):
            pass  # the base85 payload of a git binary patch: skipped, never decoded
        elif line.startswith(("new file mode", "deleted file mode")) and current is not None:
            current.status = "added" if line.startswith("new") else "deleted"
        elif line.startswith("rename to ") and current is not None:
            current.path, current.status = line[len("rename to "):].strip(), "renamed"
        elif line[:1] in ("+", "-", " ") and line.strip() and current is not None and current.hunks and \
                not current.binary:
            h = current.hunks[-1]
            raise DiffError(f"line {number}: more lines than the hunk header @@ -{h.old_start},{h.old_count} "
                            f"+{h.new_start},{h.new_count} @@ announced")
        i += 1
    if hunk is not None and (old_left > 0 or new_left > 0):
        raise DiffError(f"the diff ends inside a hunk: {old_left} old and {new_left} new lines are missing "
                        f"(was it cut off?)")
    if not files:
        raise DiffError("no file changes found: expected a unified diff with '--- a/file' / '+++ b/file' headers "
                        "and '@@' hunks (the output of `git diff` or `diff -u`)")
    for f in files:
        if not f.hunks and not f.binary and f.status not in ("renamed", "added", "deleted"):
            raise DiffError(f"{f.display_path}: a file header without any hunk")
    return Diff(files=files, text=text)
