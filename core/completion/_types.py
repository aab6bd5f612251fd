"""What an editor sends (`EditorState`), what the engine answers (`SuggestionEvent`, `Outcome`) and the knobs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from core.errors import KeelError

MAX_FILE_CHARS = 2_000_000  # a 1 MB file completes (only windows around the cursor reach the model)
MAX_FILES = 64
MAX_PATH_CHARS = 300
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")  # not tab, newline, carriage return: text has those
_PATH_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # a path has none: a newline would forge a prompt header


class CompletionInputError(KeelError, ValueError):
    """The editor state cannot be completed (binary file, cursor outside the file, ...); the message says why."""


@dataclass(frozen=True)
class EditorState:
    """One moment in the editor: the file, its whole text, the cursor offset, and the other files it knows."""

    path: str
    text: str
    cursor: int
    files: dict[str, str] = field(default_factory=dict)  # other project files the client knows: path -> text
    open_paths: tuple[str, ...] = ()  # other open tabs, left to right
    recent_paths: tuple[str, ...] = ()  # recently edited files, most recent first
    language: str | None = None

    @property
    def prefix(self) -> str:
        return self.text[: self.cursor]

    @property
    def suffix(self) -> str:
        return self.text[self.cursor:]


@dataclass
class CompletionOptions:
    """Per-request knobs an editor may send. `debounce_ms=None` means adaptive to the user's typing speed."""

    debounce_ms: float | None = None
    use_cache: bool = True
    cancel_previous: bool = True
    speculate: bool = True
    max_tokens: int = 48
    time_cap_ms: float = 1500.0
    # Start at once when this user usually pauses after the character just typed (learned per session from
    # their own keystroke gaps); False is the engine as it was before issue 18: always the adaptive debounce.
    predict_pause: bool = True
    # While the user is idle, evaluate the prompts of other open files the model has not seen yet, so the first
    # pause after switching to one reuses its KV state; False is the engine as the last stop left it.
    idle_warm: bool = True
    # While no other session has a request open, start the model at once after every keystroke: the next keystroke
    # cancels a wasted start within one chunk, while a debounce costs every pause its length (on the trace: as many
    # model calls, p50 95 -> 52 ms). With other sessions waiting, the (predicted) debounce still applies, so one
    # typist does not keep the shared model from them. False is the engine as stop 22 left it.
    start_when_idle: bool = True
    client: str | None = None  # which protocol asked (api, infill, openai): logged with the model call


@dataclass(frozen=True)
class SuggestionEvent:
    kind: str  # "start" | "delta" | "done"
    text: str = ""
    data: dict | None = None


def clean_path(path) -> str:
    """A display path for prompts and logs: text, no control characters, forward slashes, bounded length."""
    if not isinstance(path, str) or not path.strip():
        raise CompletionInputError("path must be a non-empty string")
    path = _PATH_CONTROL.sub("", path.replace("\\", "/")).strip()
    if len(path) > MAX_PATH_CHARS:
        raise CompletionInputError(f"path is longer than {MAX_PATH_CHARS} characters")
    return path


def looks_binary(text: str) -> bool:
    """NUL bytes, or more than 10 % control characters in the first 8 KB, mean it is not source code."""
    if "\x00" in text:
        return True
    head = text[:8192]
    return bool(head) and len(_CONTROL.findall(head)) / len(head) > 0.10


def validate_state(state: EditorState) -> EditorState:
    """Refuse what cannot be completed with a message a user understands; return a cleaned state."""
    path = clean_path(state.path)
    if not isinstance(state.text, str):
        raise CompletionInputError("text must be a string")
    if len(state.text) > MAX_FILE_CHARS:
        raise CompletionInputError(f"the file is {len(state.text):,} characters; the limit is {MAX_FILE_CHARS:,}")
    if looks_binary(state.text):
        raise CompletionInputError(f"{path} looks like a binary file (NUL or control bytes); nothing to complete")
    if isinstance(state.cursor, bool) or not isinstance(state.cursor, int):
        raise CompletionInputError("cursor must be an integer character offset")
    if not 0 <= state.cursor <= len(state.text):
        raise CompletionInputError(f"cursor {state.cursor} is outside the file (0..{len(state.text)})")
    files: dict[str, str] = {}
    for other, text in list((state.files or {}).items())[:MAX_FILES]:
        if isinstance(other, str) and isinstance(text, str) and not looks_binary(text):
            files[clean_path(other)] = text[:MAX_FILE_CHARS]
    files.pop(path, None)
    known = set(files)
    return EditorState(
        path=path, text=state.text, cursor=state.cursor, files=files,
        open_paths=tuple(p for p in (clean_path(p) for p in state.open_paths if isinstance(p, str) and p.strip())
                         if p in known),
        recent_paths=tuple(p for p in (clean_path(p) for p in state.recent_paths if isinstance(p, str) and p.strip())
                           if p in known),
        language=state.language if isinstance(state.language, str) else None,
    )


def offset_of(text: str, line: int, col: int) -> int:
    """1-based line and column to a character offset; CompletionInputError if outside the file."""
    lines = text.split("\n")
    if line < 1 or line > len(lines):
        raise CompletionInputError(f"line {line} is outside the file (1..{len(lines)})")
    if col < 1 or col > len(lines[line - 1]) + 1:
        raise CompletionInputError(f"column {col} is outside line {line} (1..{len(lines[line - 1]) + 1})")
    return sum(len(x) + 1 for x in lines[: line - 1]) + col - 1
