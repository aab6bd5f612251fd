"""Review comments: the structure every finding takes, and the post-processing that keeps reviews short —
only lines the PR adds, similar comments collapsed into one, vague ones dropped by a specificity score, and
suggestions a user dismissed for this repository never raised again (matched by fingerprint, not by line, so
they stay dismissed when code moves).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    """How bad a review finding is, worst first (the order is the rank). The values are what `review_comment.severity`,
    stored review JSON, SARIF properties, eval cases' `min_severity` and `keel review --fail-on` hold."""

    BLOCKER = "blocker"  # must not merge: injection into a query, an undefined name
    MAJOR = "major"  # very likely a bug or a hole
    MINOR = "minor"  # worth fixing
    NIT = "nit"  # style

    @classmethod
    def parse(cls, value) -> Severity | None:
        """The member a model or a tool wrote ("Major", " nit "), or None when it is not a severity."""
        text = str(value).strip().lower() if isinstance(value, str) else ""
        return cls(text) if text in cls._value2member_map_ else None


SEVERITIES: tuple[Severity, ...] = tuple(Severity)
CATEGORIES = ("correctness", "security", "performance", "quality")
SOURCES = ("tool", "model")
MIN_SPECIFICITY = 0.4
_VAGUE = re.compile(r"\b(consider|might|maybe|perhaps|could be (improved|better)|looks (good|fine|ok)|lgtm|"
                    r"best practices?|make sure|double.check|be careful|not ideal|some issues?|clean ?up|"
                    r"in general|it depends|various|etc)\b", re.IGNORECASE)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")


@dataclass
class Comment:
    path: str
    line: int
    severity: Severity  # a plain string with a severity's value is accepted and turned into the member
    category: str
    message: str
    suggestion: str = ""
    source: str = "tool"  # tool | model
    confidence: float = 0.8
    rule: str = ""  # e.g. "bandit:B608", "rule:sql-string", "model"
    explanation: str = ""  # the model's words on a tool finding
    also_at: list[int] = field(default_factory=list)  # collapsed duplicates elsewhere in the file
    code: str = ""  # the flagged line's text
    end_line: int = 0  # the last line of the flagged statement's span (0: the span is `line` alone)
    specificity: float = 0.0
    fingerprint: str = ""
    id: int | None = None
    status: str = "open"  # open | accepted | dismissed

    def __post_init__(self):
        if not isinstance(self.severity, Severity):
            severity = Severity.parse(self.severity)
            if severity is None:
                raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, not {self.severity!r}")
            self.severity = severity

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Comment":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def severity_rank(severity: str) -> int:
    """0 for blocker ... 3 for nit (lower is worse)."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def at_least(severity: str, minimum: str) -> bool:
    return severity_rank(severity) <= severity_rank(minimum)


def fingerprint(comment: Comment) -> str:
    """Stable across line moves: the file, the category, the rule and the flagged code without whitespace."""
    code = re.sub(r"\s+", "", comment.code or "")
    rule = comment.rule if comment.source == "tool" else re.sub(r"\W+", " ", comment.message.lower()).strip()[:80]
    raw = "\x1f".join((comment.path, comment.category, rule, code))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def specificity(comment: Comment) -> float:
    """0..1: does the comment point at something concrete (names from the code, a rule, a fix) or just wave?"""
    text = f"{comment.message} {comment.suggestion}"
    score = 0.0
    code_names = set(_IDENT.findall(comment.code or ""))
    named = code_names & set(_IDENT.findall(text))
    if named:
        score += 0.35
    if comment.rule and comment.rule != "model":
        score += 0.25
    if comment.suggestion.strip():
        score += 0.2
    words = len(text.split())
    if 6 <= words <= 120:
        score += 0.2
    elif words < 4:
        score -= 0.2
    if re.search(r"`[^`]+`|\w+\(\)|\b(line|parameter|argument|query|index|loop|exception)\b", text, re.IGNORECASE):
        score += 0.1
    score -= 0.15 * len(_VAGUE.findall(text))
    return round(max(0.0, min(1.0, score)), 3)


def first_added(lines: dict[int, str], start: int, end: int) -> int | None:
    """The first added line within the span start..end, or None: a finding on a multi-line statement (bandit's
    line_range, ruff's range, an AST node's lines) lands where the PR changed it."""
    if end <= start:
        return None
    return next((n for n in range(start, min(end, start + 500) + 1) if n in lines), None)


def keep_added_lines(comments: list[Comment], added: dict[str, dict[int, str]],
                     removals: dict[str, dict[int, str]] | None = None) -> tuple[list[Comment], int]:
    """Comments on lines the PR adds or changes, each with that line's text; returns (kept, dropped count).
    `removals` maps the new-side line right after each removed block to its text: a statement whose span holds
    one was changed by the removal (an argument or a guard deleted), so its finding lands there."""
    kept = []
    for c in comments:
        lines = added.get(c.path)
        if lines is None:
            continue
        if c.line not in lines:
            first = first_added(lines, c.line, c.end_line)
            if first is None:
                after = (removals or {}).get(c.path, {})
                first = next((n for n in sorted(after) if c.line <= n <= max(c.line, c.end_line)), None)
                if first is None:
                    continue
                lines = after
            c.line = first  # a multi-line statement the PR changed below its first line
        c.code = lines[c.line]
        kept.append(c)
    return kept, len(comments) - len(kept)


def collapse(comments: list[Comment], *, near: int = 2) -> list[Comment]:
    """Merge comments on the same file and category within `near` lines (two tools, one problem), and the same
    rule repeated in a file (one comment, `also_at` lists the other lines)."""
    ordered = sorted(comments, key=lambda c: (c.path, severity_rank(c.severity), -c.confidence, c.line))
    merged: list[Comment] = []
    for c in ordered:
        twin = next((m for m in merged if m.path == c.path and (
            (m.category == c.category and (abs(m.line - c.line) <= near or
                                            (c.rule and c.rule in m.rule.split(", "))))
            or (m.line == c.line and c.category == "quality"))), None)  # a style echo of a worse finding
        if twin is None:
            merged.append(c)
            continue
        if abs(twin.line - c.line) > near and c.line not in twin.also_at:
            twin.also_at.append(c.line)
        if severity_rank(c.severity) < severity_rank(twin.severity):
            twin.severity = c.severity
        twin.confidence = round(min(0.99, max(twin.confidence, c.confidence) + 0.05), 3)
        if not twin.suggestion and c.suggestion:
            twin.suggestion = c.suggestion
        if c.rule and c.rule not in twin.rule.split(", "):
            twin.rule = f"{twin.rule}, {c.rule}" if twin.rule else c.rule
    for m in merged:
        m.also_at.sort()
    return sorted(merged, key=lambda c: (c.path, c.line, severity_rank(c.severity)))


def finish(comments: list[Comment], added: dict[str, dict[int, str]], dismissed: set[str] | frozenset = frozenset(),
           *, suppressed_out: list[Comment] | None = None,
           removals: dict[str, dict[int, str]] | None = None) -> tuple[list[Comment], dict]:
    """The whole post-processing: added lines only → collapse → specificity → drop dismissed fingerprints
    (collected into `suppressed_out` when given, so they can be cached and shown again if a dismissal is undone)."""
    kept, off_lines = keep_added_lines(comments, added, removals)
    collapsed = collapse(kept)
    result, vague, suppressed = [], 0, 0
    for c in collapsed:
        c.specificity = specificity(c)
        c.fingerprint = c.fingerprint or fingerprint(c)
        if c.specificity < MIN_SPECIFICITY:
            vague += 1
            continue
        if c.fingerprint in dismissed:
            suppressed += 1
            if suppressed_out is not None:
                suppressed_out.append(c)
            continue
        result.append(c)
    stats = {"raw": len(comments), "not_on_added_lines": off_lines, "collapsed": len(kept) - len(collapsed),
             "vague_dropped": vague, "dismissed_suppressed": suppressed, "kept": len(result)}
    return result, stats


def verdict(comments: list[Comment]) -> str:
    if any(at_least(c.severity, Severity.MAJOR) for c in comments):
        return "request_changes"
    return "comment" if comments else "approve"


def merge_model_comments(comments: list[Comment], model: list[Comment], added: dict[str, dict[int, str]],
                         dismissed: set[str] | frozenset = frozenset()) -> tuple[list[Comment], int]:
    """Add the model's own comments where no tool comment already covers the same file, category and place;
    returns (merged list, how many model comments were dropped as duplicates, vague or dismissed)."""
    kept, _ = keep_added_lines(model, added)
    dropped = len(model) - len(kept)
    merged = list(comments)
    for c in collapse(kept):
        c.specificity = specificity(c)
        c.fingerprint = fingerprint(c)
        covered = any(m.path == c.path and m.category == c.category and abs(m.line - c.line) <= 2 for m in merged)
        if covered or c.specificity < MIN_SPECIFICITY or c.fingerprint in dismissed:
            dropped += 1
            continue
        merged.append(c)
    return sorted(merged, key=lambda c: (c.path, c.line, severity_rank(c.severity))), dropped
