"""Context assembly under a token budget.

Budget priority (what gets tokens first): the current file around the cursor, recently edited files, other
open tabs, files with similar names, signatures of imported modules, a short path tree. The prompt is then
written in the reverse order — the most stable text first — so the beginning of the prompt survives from one
keystroke to the next and llama.cpp can reuse its KV cache.

The prefix window starts on a line boundary snapped to a grid of half its size: typing moves the window's
start only every few hundred characters, not on every keystroke.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field

from core.completion._fim import ContextChunk
from core.completion._languages import Language, imported_paths, language_for, signatures, similar_paths
from core.completion._types import EditorState

CHARS_PER_TOKEN = 3.5  # SmolLM2 measured ~4 on code; 3.5 keeps the estimate on the safe side
PRIORITY = ("current", "recent", "tab", "similar", "imports", "tree")


def approx_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class Budget:
    total_tokens: int = 640
    prefix_tokens: int = 320  # the prefix window; the rest of the budget goes to suffix and other files
    suffix_tokens: int = 96  # only spent when the template uses the suffix
    chunk_tokens: int = 120  # at most this much of any one other file
    tree_entries: int = 24


@dataclass
class Assembly:
    prefix: str
    prefix_start: int
    suffix: str
    chunks: list[ContextChunk]  # in prompt order: most stable first
    tokens: dict[str, int] = field(default_factory=dict)  # spent per kind, in PRIORITY order
    dropped: list[str] = field(default_factory=list)  # files that did not fit


def prefix_window_start(text: str, cursor: int, max_chars: int, previous: int | None = None) -> int:
    """Where the prefix window starts: on the grid of max_chars/2 past `cursor - max_chars`, then a line start.

    `previous` (where this file's window started last time) is kept while the window from there still fits and
    starts a line: a window that moves back after an acceptance is undone or a few characters are deleted would
    change the prompt from the file's first line on, and the model would evaluate the whole file again."""
    if previous is not None and 0 < previous <= cursor <= previous + max_chars and text[previous - 1] == "\n":
        return previous
    raw = max(0, cursor - max_chars)
    if raw == 0:
        return 0
    step = max(1, max_chars // 2)
    start = min(cursor, math.ceil(raw / step) * step)
    newline = text.find("\n", start, cursor)
    return newline + 1 if newline >= 0 else start


def suffix_window(text: str, cursor: int, max_chars: int) -> str:
    window = text[cursor: cursor + max_chars]
    if len(window) == max_chars and "\n" in window:
        window = window[: window.rfind("\n") + 1]
    return window


def _truncate(text: str, max_tokens: int, count: Callable[[str], int]) -> str:
    if count(text) <= max_tokens:
        return text
    cut = text[: int(max_tokens * CHARS_PER_TOKEN)]
    if "\n" in cut:
        cut = cut[: cut.rfind("\n") + 1]
    while cut and count(cut) > max_tokens:
        cut = cut[: int(len(cut) * 0.9)]
    return cut


def path_tree(paths: list[str], limit: int) -> str:
    """A short indented tree of the project's paths."""
    lines: list[str] = []
    seen_dirs: set[str] = set()
    for path in sorted(set(paths))[:limit]:
        parts = path.split("/")
        for depth in range(len(parts) - 1):
            directory = "/".join(parts[: depth + 1])
            if directory not in seen_dirs:
                seen_dirs.add(directory)
                lines.append("  " * depth + parts[depth] + "/")
        lines.append("  " * (len(parts) - 1) + parts[-1])
    return "\n".join(lines)


def assemble(state: EditorState, budget: Budget, *, uses_suffix: bool,
             count: Callable[[str], int] = approx_tokens, previous_start: int | None = None) -> Assembly:
    """Fill the budget in priority order; return the windows and the chunks in prompt order. `previous_start`: where
    this file's prefix window started last time (kept while it fits, see `prefix_window_start`)."""
    language = language_for(state.path, state.language)
    start = prefix_window_start(state.text, state.cursor, int(budget.prefix_tokens * CHARS_PER_TOKEN), previous_start)
    prefix = state.text[start: state.cursor]
    suffix = suffix_window(state.text, state.cursor, int(budget.suffix_tokens * CHARS_PER_TOKEN))
    spent = {"current": count(prefix) + (count(suffix) if uses_suffix else 0)}
    remaining = budget.total_tokens - spent["current"]
    chosen: dict[str, list[ContextChunk]] = {kind: [] for kind in PRIORITY[1:]}
    used_paths = {state.path}
    dropped: list[str] = []
    known = sorted(state.files)

    def take(kind: str, path: str, text: str) -> None:
        nonlocal remaining
        if not text.strip():
            return
        allowed = min(budget.chunk_tokens, remaining - 8)  # 8 tokens for the header line
        if allowed < 16:
            dropped.append(path)
            return
        piece = _truncate(text, allowed, count)
        if not piece.strip():
            dropped.append(path)
            return
        cost = count(piece) + 8
        remaining -= cost
        spent[kind] = spent.get(kind, 0) + cost
        chosen[kind].append(ContextChunk(kind, path, piece))
        used_paths.add(path)

    for path in state.recent_paths:
        if path not in used_paths:
            take("recent", path, state.files[path])
    for path in state.open_paths:
        if path not in used_paths:
            take("tab", path, state.files[path])
    for path in similar_paths(state.path, known):
        if path not in used_paths:
            take("similar", path, state.files[path])
    for path in imported_paths(state.text, state.path, language, known):
        if path not in used_paths:
            take("imports", path, signatures(state.files[path], language_for(path)))
    if known:
        take("tree", posixpath.dirname(state.path) or ".", path_tree([*known, state.path], budget.tree_entries))
    ordered = [chunk for kind in reversed(PRIORITY[1:]) for chunk in chosen[kind]]
    return Assembly(prefix=prefix, prefix_start=start, suffix=suffix, chunks=ordered, tokens=spent,
                    dropped=dropped)


def language_of(state: EditorState) -> Language:
    return language_for(state.path, state.language)
