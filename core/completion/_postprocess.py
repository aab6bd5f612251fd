"""Where a suggestion ends: at the end of the line when the cursor is mid-line, otherwise at the end of the
line or of the block just opened; trimmed where it would repeat the text after the cursor."""

from __future__ import annotations

from core.completion._languages import Language

MAX_BLOCK_LINES = 8
_OPENERS = (":", "{", "(", "[", "=>", "->")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


class StopRule:
    """Feed the model's text as it streams; `visible` is what may be shown so far, `done` says stop the model."""

    def __init__(self, prefix: str, suffix: str, language: Language):
        current_line = prefix[prefix.rfind("\n") + 1:]
        rest_of_line = suffix.split("\n", 1)[0]
        self.rest_of_line = rest_of_line
        self.mid_line = bool(rest_of_line.strip())
        stripped = current_line.rstrip()
        self.base_indent = _indent(current_line) if stripped else len(current_line)
        self.opens_block = (not self.mid_line) and stripped.endswith(_OPENERS)
        self.braces = language.braces
        self.blank_line = not stripped
        self.text = ""
        self.done = False
        self.capped_at_line: int | None = None  # set by cap(): finish the line being written, then stop

    def cap(self) -> None:
        """The time cap passed (llama.cpp's t_max_predict_ms): end at the next newline."""
        if self.capped_at_line is None:
            self.capped_at_line = self.text.count("\n")

    def feed(self, delta: str) -> str:
        """Append model text; return the visible text so far (it only grows while streaming)."""
        if not self.done:
            self.text += delta
        return self.visible()

    def visible(self) -> str:
        cut, done = self._cut(self.text)
        if done:
            self.done = True
        return cut

    def _cut(self, text: str) -> tuple[str, bool]:
        cut, done = self._cut_by_rule(text)
        if self.capped_at_line is not None:
            lines = cut.split("\n")
            if len(lines) > self.capped_at_line + 1:
                return "\n".join(lines[: self.capped_at_line + 1]), True
            if text.count("\n") > self.capped_at_line:
                return cut, True
        return cut, done

    def _cut_by_rule(self, text: str) -> tuple[str, bool]:
        lines = text.split("\n")
        complete, last = lines[:-1], lines[-1]
        first = complete[0] if complete else last
        if self.mid_line:
            return (first, True) if complete else (last, False)
        if not self.opens_block:
            # end of line: finish this line; if it is already complete, offer the next non-blank line
            if first.strip():
                return (first, True) if complete else (first, False)
            if not complete:
                return "", False
            body = [line for line in complete[1:]]
            for i, line in enumerate(body):
                if line.strip():
                    return "\n".join(complete[: i + 2]), True
            if last.strip():
                return "\n".join([*complete, last]), False
            return "", len(complete) > 2  # only blank lines: nothing to show
        # a block was opened: take lines indented deeper than the opener (plus a closing brace)
        kept = [first]
        for line in complete[1:]:
            if not line.strip():
                if kept and not kept[-1].strip():
                    return "\n".join(kept).rstrip(), True
                kept.append(line)
                continue
            if _indent(line) <= self.base_indent:
                if self.braces and line.strip().startswith(("}", ")", "]")):
                    kept.append(line)
                return "\n".join(kept).rstrip(), True
            kept.append(line)
            if len(kept) >= MAX_BLOCK_LINES:
                return "\n".join(kept), True
        if last.strip() and complete and _indent(last) <= self.base_indent and not (
                self.braces and last.strip().startswith(("}", ")", "]"))):
            return "\n".join(kept).rstrip(), True
        if not last.strip():
            return "\n".join(kept), False  # hold back a line that is only indentation so far
        return "\n".join([*kept, last]) if complete else last, False

    def final(self) -> str:
        """The suggestion to keep: trailing spaces dropped, text the suffix already holds trimmed."""
        text, _ = self._cut(self.text)
        lines = [line.rstrip() for line in text.split("\n")]
        text = "\n".join(lines).rstrip("\n")
        if self.mid_line and self.rest_of_line.strip():
            rest = self.rest_of_line.strip()
            # the model often re-types the text after the cursor, e.g. a closing bracket
            for size in range(len(rest), 0, -1):
                if text.endswith(rest[:size]) and (size == len(rest) or size >= 1 and rest[:size] in ")]}\"'"):
                    text = text[: -size]
                    break
        if not text.strip():
            return ""
        return text
