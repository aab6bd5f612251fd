"""`keel prompts lint`: static checks on prompt files, each finding naming file, line, severity and rule.

Rules (all errors unless noted):

- ``parse-error``: the file does not parse with :func:`core.prompts.parse` (front matter, sections); ``encoding``:
  the file is not UTF-8 text.
- ``pii-email``, ``pii-phone``, ``pii-card`` (Luhn-checked), ``pii-iban`` (mod-97 checked), ``pii-demo-user``
  (a name or email of a demo user in :data:`core.idp.DEV_USERS`): personal data anywhere in the file, few-shot
  examples included. Addresses at the reserved example domains (example.com/.org/.net, *.example, *.test,
  *.invalid) are not personal data and are allowed in examples.
- ``trailing-whitespace`` (warning).
- Placeholders. Which values a caller supplies is not knowable from the file alone, so the lint checks what
  is: ``placeholder-malformed``: a `## user` placeholder that ``render(**values)`` can never fill (``{}``,
  ``{0}``, ``{a.b}``, ``{a[0]}``) or an unbalanced ``{`` / ``}`` (write ``{{`` / ``}}`` for literal braces);
  ``placeholder-unresolved``: a ``{name}`` in the `## system` section, which is sent as-is and never
  formatted. Optionally a file may declare the values its caller supplies in an ``## inputs`` section (one
  ``- name`` per line; the loader ignores sections other than system and user, so this needs no change to
  the prompt format). When that section exists, ``placeholder-unused`` flags a declared input the template
  never uses and ``placeholder-undeclared`` a template placeholder that is not declared.
- ``contradiction``: two instructions from the :data:`CONTRADICTIONS` table in the same prompt, for example
  "reply with JSON only" with "explain your reasoning".
- ``token-budget``: the rendered prompt (system + user with empty placeholders, estimated at 4 characters per
  token) plus the front matter's ``max_tokens`` does not fit the embedded model's context (``embedded_ctx``).
- Versions: ``version-changed`` / ``version-unlocked``. A prompt's version is the hash of its file, so it
  changes with every edit by construction; what goes wrong in practice is an edit that nobody notices
  changed the version that logs and evals are keyed on. ``prompts/versions.lock`` records, for each prompt id,
  the version that was last reviewed (``<id> <version>`` per line). The lint fails when a prompt's current
  version differs from the lock (its text changed but the lock was not bumped) or the prompt is missing from
  it; ``keel prompts lint --update-lock`` rewrites the lock deliberately, so every prompt change shows up as a
  version change in the same diff. A file belongs to the nearest ``versions.lock`` in its folder or a parent
  folder (its id is its path from there, without ``.md``); files with no lock above them skip this rule.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from core.prompts import PROMPTS_DIR, PromptError, parse

LOCK_NAME = "versions.lock"
CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    severity: str  # "error" | "warning"
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.severity} {self.rule}: {self.message}"

    def as_dict(self) -> dict:
        return asdict(self)


# Pairs of instructions that cannot both be followed; each side is a case-insensitive regex.
CONTRADICTIONS: tuple[tuple[str, str, str], ...] = (
    ("JSON-only output", r"\b(?:json only|only (?:valid )?json|nothing but (?:valid )?json|"
                         r"(?:return|reply|respond|answer|output)\b[^.\n]{0,40}\bjson\b[^.\n]{0,30}\bonly\b)",
     r"\b(?:explain your (?:reasoning|answer|thinking|steps)|think step[- ]by[- ]step|"
     r"show your (?:work|reasoning|steps)|walk through your reasoning)\b"),
    ("brevity", r"\b(?:be (?:very |extremely )?(?:concise|brief|terse)|(?:in|with) (?:a single|one) sentence|"
                r"one sentence only|at most one sentence|keep it short)\b",
     r"\b(?:in (?:great |full |exhaustive )?detail|at (?:great )?length|thoroughly|exhaustive(?:ly)?|"
     r"comprehensive(?:ly)?)\b"),
    ("plain-text output", r"\b(?:no markdown|do not use markdown|don't use markdown|plain text only)\b",
     r"\b(?:use markdown|format (?:it |the answer )?(?:as|in) markdown|use (?:bullet points|headings))\b"),
)

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_EXAMPLE_DOMAIN = re.compile(r"(?:^|\.)(?:example\.(?:com|org|net)|example|test|invalid|localhost)$", re.I)
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"
                    r"|\(\d{3}\) ?\d{3}[ .-]\d{4}|\d{3}[ .-]\d{3}[ .-]\d{4})(?![\w-])")
_NAMED_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    s = iban.replace(" ", "").upper()
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def version_of(text: str) -> str:
    """The version :func:`core.prompts.load` gives a file: sha256 of its text as read_text returns it (universal
    newlines), first 10 hex digits."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]


# ---------------------------------------------------------------------------------------------------------
# versions.lock


def read_lock(path: Path) -> dict[str, str]:
    entries: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            parts = line.split()
            if len(parts) == 2:
                entries[parts[0]] = parts[1]
    return entries


def lock_root_for(file: Path) -> Path | None:
    """The folder of the nearest versions.lock at or above the file (the project's prompts/ folder counts)."""
    file = file.resolve()
    prompts = PROMPTS_DIR.resolve()
    if prompts in file.parents:
        return prompts
    for folder in file.parents:
        if (folder / LOCK_NAME).is_file():
            return folder
    return None


def update_lock(root: Path) -> Path:
    """Rewrite ``root/versions.lock`` with the current version of every ``*.md`` prompt under ``root``."""
    root = root.resolve()
    lines = ["# Reviewed prompt versions: `<prompt id> <version>`. Regenerate with `keel prompts lint --update-lock`",
             "# after reviewing a prompt change; the lint fails while a prompt's version differs from this file."]
    for path in sorted(root.rglob("*.md")):
        prompt_id = path.relative_to(root).with_suffix("").as_posix()
        lines.append(f"{prompt_id} {version_of(path.read_text(encoding='utf-8'))}")
    lock = root / LOCK_NAME
    lock.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lock


# ---------------------------------------------------------------------------------------------------------
# linting one file


def _line_at(text: str, pos: int, base: int = 1) -> int:
    return text.count("\n", 0, pos) + base


def _sections(lines: list[str], start: int) -> dict[str, tuple[int, int]]:
    """Section name -> (first content line index, end index) over 0-based line indexes, as parse() splits."""
    found: dict[str, tuple[int, int]] = {}
    current, first = None, 0
    for i in range(start, len(lines)):
        if lines[i].startswith("## "):
            if current is not None:
                found[current] = (first, i)
            current, first = lines[i][3:].strip().lower(), i + 1
    if current is not None:
        found[current] = (first, len(lines))
    return found


def _scan_fields(line: str) -> tuple[list[str], list[str]]:
    """Placeholder names and problems in one line of a str.format template."""
    names: list[str] = []
    problems: list[str] = []
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if ch == "{":
            if i + 1 < n and line[i + 1] == "{":
                i += 2
                continue
            end = line.find("}", i + 1)
            nested = line.find("{", i + 1)
            if end < 0 or (0 <= nested < end):
                problems.append(f"unbalanced '{{' at column {i + 1} (write '{{{{' for a literal brace)")
                i += 1
                continue
            field = line[i + 1:end]
            name = re.split(r"[!:]", field, maxsplit=1)[0]
            if not name:
                problems.append(f"positional placeholder {{{field}}} cannot be filled by name")
            elif not _IDENT.fullmatch(name):
                problems.append(f"placeholder {{{field}}} is not a plain name (render fills names only)")
            else:
                names.append(name)
            i = end + 1
        elif ch == "}":
            if i + 1 < n and line[i + 1] == "}":
                i += 2
                continue
            problems.append(f"single '}}' at column {i + 1} (write '}}}}' for a literal brace)")
            i += 1
        else:
            i += 1
    return names, problems


_NEGATED = re.compile(r"\b(?:not|n't|never|no|without|avoid)\b(?:\W+\w+){0,3}\W*$", re.I)


def _affirmed(pattern: str, text: str) -> re.Match | None:
    """The first match of an instruction that is not negated ("do not explain your reasoning")."""
    for m in re.finditer(pattern, text, re.I):
        before = text[max(0, m.start() - 40):m.start()].rsplit("\n", 1)[-1]
        before = re.split(r"[.;:!?]", before)[-1]
        if not _NEGATED.search(before):
            return m
    return None


def _pii(text: str, display: str) -> list[Finding]:
    from core.idp import DEV_USERS

    out: list[Finding] = []
    taken: list[tuple[int, int]] = []

    def add(start: int, end: int, rule: str, message: str) -> None:
        taken.append((start, end))
        out.append(Finding(display, _line_at(text, start), "error", rule, message))

    def free(start: int, end: int) -> bool:
        return all(end <= a or start >= b for a, b in taken)

    demo_emails = {u.sub.lower(): u for u in DEV_USERS}
    for m in _EMAIL.finditer(text):
        address = m.group(0)
        domain = address.rsplit("@", 1)[1]
        if address.lower() in demo_emails:
            add(m.start(), m.end(), "pii-demo-user", f"email of demo user {demo_emails[address.lower()].name}")
        elif _EXAMPLE_DOMAIN.search(domain):
            taken.append((m.start(), m.end()))
        else:
            add(m.start(), m.end(), "pii-email", f"email address {address!r}")
    for user in DEV_USERS:
        for m in re.finditer(r"\b" + re.escape(user.name) + r"\b", text, re.I):
            if free(m.start(), m.end()):
                add(m.start(), m.end(), "pii-demo-user", f"name of demo user {user.name!r}")
    for m in _IBAN.finditer(text):
        if free(m.start(), m.end()) and iban_ok(m.group(0)):
            add(m.start(), m.end(), "pii-iban", "IBAN (valid mod-97 checksum)")
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group(0))
        if free(m.start(), m.end()) and 13 <= len(digits) <= 19 and luhn_ok(digits):
            add(m.start(), m.end(), "pii-card", f"payment card number ending {digits[-4:]} (passes Luhn)")
    for m in _PHONE.finditer(text):
        digits = re.sub(r"\D", "", m.group(0))
        if free(m.start(), m.end()) and 7 <= len(digits) <= 15:
            add(m.start(), m.end(), "pii-phone", f"phone number {m.group(0)!r}")
    return out


def lint_text(raw: str, display: str, *, prompt_id: str = "", locked: dict[str, str] | None = None,
              ctx: int | None = None) -> list[Finding]:
    """All findings for one prompt file's text. ``locked`` is its lock (None: no version check)."""
    if ctx is None:
        from core.config import get_settings

        ctx = get_settings().embedded_ctx
    findings: list[Finding] = []
    lines = raw.split("\n")

    for i, line in enumerate(lines, 1):
        if line != line.rstrip(" \t\r\f\v"):
            findings.append(Finding(display, i, "warning", "trailing-whitespace", "trailing whitespace"))

    findings += _pii(raw, display)

    body_start = 0  # 0-based index of the first line after the front matter
    if raw.startswith("---\n"):
        end = raw.find("\n---\n", 4)
        if end >= 0:
            body_start = _line_at(raw, end, 0) + 2
    sections = _sections(lines, body_start)

    placeholder_problem = False
    used: dict[str, int] = {}
    if "user" in sections:
        first, last = sections["user"]
        for i in range(first, last):
            names, problems = _scan_fields(lines[i])
            for name in names:
                used.setdefault(name, i + 1)
            for problem in problems:
                placeholder_problem = True
                findings.append(Finding(display, i + 1, "error", "placeholder-malformed", problem))
    if "system" in sections:
        first, last = sections["system"]
        for i in range(first, last):
            for m in _NAMED_FIELD.finditer(lines[i]):
                findings.append(Finding(display, i + 1, "error", "placeholder-unresolved",
                                        f"{m.group(0)} in the system section is sent as-is, never filled in"))
    if "inputs" in sections:
        first, last = sections["inputs"]
        declared: dict[str, int] = {}
        for i in range(first, last):
            item = lines[i].strip().lstrip("-*").strip().strip("`{}")
            if item:
                declared.setdefault(item, i + 1)
        for name, line_no in declared.items():
            if name not in used:
                findings.append(Finding(display, line_no, "error", "placeholder-unused",
                                        f"input {name!r} is declared but the user template never uses {{{name}}}"))
        for name, line_no in used.items():
            if name not in declared:
                findings.append(Finding(display, line_no, "error", "placeholder-undeclared",
                                        f"{{{name}}} is not listed in the '## inputs' section"))

    body = "\n".join(lines[body_start:])
    for label, left, right in CONTRADICTIONS:
        a, b = _affirmed(left, body), _affirmed(right, body)
        if a and b:
            la, lb = _line_at(body, a.start(), body_start + 1), _line_at(body, b.start(), body_start + 1)
            findings.append(Finding(display, max(la, lb), "error", "contradiction",
                                    f"{label}: {a.group(0)!r} (line {la}) contradicts {b.group(0)!r} (line {lb})"))

    try:
        prompt = parse(prompt_id or display, raw)
    except PromptError as exc:
        if not (placeholder_problem and "placeholder" in str(exc)):
            line_no = 1
            mark = re.search(r"line (\d+)", str(exc))
            if "YAML" in str(exc) and mark:
                line_no = int(mark.group(1)) + 1  # YAML lines count from the line after the opening ---
            findings.append(Finding(display, line_no, "error", "parse-error", str(exc)))
        prompt = None
    except (TypeError, ValueError) as exc:  # e.g. max_tokens: lots
        findings.append(Finding(display, 1, "error", "parse-error", f"front matter value is invalid: {exc}"))
        prompt = None

    if prompt is not None:
        # Render with every placeholder empty (`{{`/`}}` become single braces), as render() would send it.
        user = re.sub(r"\{\{|\}\}|\{[^{}]*\}", lambda m: m.group(0)[0] if m.group(0) in ("{{", "}}") else "",
                      prompt.template)
        rendered = prompt.system + "\n" + user
        tokens = -(-len(rendered) // CHARS_PER_TOKEN)
        if tokens + prompt.max_tokens > ctx:
            mt_line = next((i for i, ln in enumerate(lines[:body_start], 1) if ln.startswith("max_tokens:")), 1)
            findings.append(Finding(display, mt_line, "error", "token-budget",
                                    f"about {tokens} prompt tokens + max_tokens {prompt.max_tokens} = "
                                    f"{tokens + prompt.max_tokens} exceeds the model context of {ctx}"))

    if locked is not None and prompt_id:
        current = version_of(raw)
        recorded = locked.get(prompt_id)
        if recorded is None:
            findings.append(Finding(display, 1, "error", "version-unlocked",
                                    f"prompt {prompt_id} (version {current}) is not in {LOCK_NAME}; "
                                    "review it and run `keel prompts lint --update-lock`"))
        elif recorded != current:
            findings.append(Finding(display, 1, "error", "version-changed",
                                    f"text changed: version is {current} but {LOCK_NAME} records {recorded}; "
                                    "review the change and run `keel prompts lint --update-lock`"))

    findings.sort(key=lambda f: (f.line, f.rule))
    return findings


def lint_file(path: Path, display: str | None = None, *, ctx: int | None = None) -> list[Finding]:
    display = display or str(path)
    data = path.read_bytes()
    try:
        raw = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [Finding(display, data.count(b"\n", 0, exc.start) + 1, "error", "encoding",
                        f"not UTF-8 text (bad byte 0x{data[exc.start]:02x} at offset {exc.start})")]
    root = lock_root_for(path)
    prompt_id, locked = "", None
    if root is not None:
        prompt_id = path.resolve().relative_to(root).with_suffix("").as_posix()
        lock = root / LOCK_NAME
        locked = read_lock(lock) if lock.is_file() else {}
    return lint_text(raw, display, prompt_id=prompt_id, locked=locked, ctx=ctx)


def collect(paths: list[Path]) -> list[Path]:
    """Prompt files named by the paths: a file as given, a folder as its ``*.md`` files. Missing: ValueError."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.rglob("*.md")))
        elif path.is_file():
            files.append(path)
        else:
            raise ValueError(f"no such file or folder: {str(path)!r}")
    return files


def lint_paths(paths: list[Path] | None = None, *, ctx: int | None = None) -> list[Finding]:
    findings: list[Finding] = []
    for file in collect(paths or [PROMPTS_DIR]):
        findings.extend(lint_file(file, _display(file), ctx=ctx))
    return findings


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
