"""What the engine knows about languages: names by file extension, line comments, block openers, imports and
signature lines (so imported modules can be summarised in a few lines of context)."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    name: str
    comment: str  # line-comment prefix used for headers in prefix-only prompts
    braces: bool  # blocks are closed with "}" rather than by dedent
    signature: re.Pattern  # lines worth keeping when a file is summarised as context
    imports: re.Pattern  # group 1 is the imported module/path


_PY_SIG = re.compile(r"^\s*(?:async\s+def|def|class)\s+\w+.*$|^[A-Z_][A-Z0-9_]*\s*=.*$", re.M)
_PY_IMP = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import|import\s+([\w.]+))", re.M)
_JS_SIG = re.compile(r"^\s*(?:export\s+)?(?:default\s+)?(?:async\s+)?(?:function\*?|class|interface|type|const|let|"
                     r"enum)\s+\w+.*$", re.M)
_JS_IMP = re.compile(r"""^\s*import\s+(?:[^'"]*?from\s+)?['"]([^'"]+)['"]|require\(\s*['"]([^'"]+)['"]\s*\)""",
                     re.M)
_GO_SIG = re.compile(r"^\s*(?:func|type)\s+.*$", re.M)
_GO_IMP = re.compile(r'^\s*(?:import\s+)?"([\w./-]+)"', re.M)
_RS_SIG = re.compile(r"^\s*(?:pub\s+)?(?:fn|struct|enum|trait|impl|type)\s+.*$", re.M)
_RS_IMP = re.compile(r"^\s*use\s+([\w:]+)", re.M)
_C_SIG = re.compile(r"^[ \t]*[A-Za-z_][\w \t*<>\[\],:]{0,120}\([^;{}\n]{0,200}\)[ \t]*\{?[ \t]*$", re.M)
_C_IMP = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
_NONE = re.compile(r"(?!x)x")
MAX_SCAN_CHARS = 200_000  # imports and signatures are near the top; never scan a whole huge file

LANGUAGES = {
    "python": Language("python", "#", False, _PY_SIG, _PY_IMP),
    "typescript": Language("typescript", "//", True, _JS_SIG, _JS_IMP),
    "javascript": Language("javascript", "//", True, _JS_SIG, _JS_IMP),
    "go": Language("go", "//", True, _GO_SIG, _GO_IMP),
    "rust": Language("rust", "//", True, _RS_SIG, _RS_IMP),
    "c": Language("c", "//", True, _C_SIG, _C_IMP),
    "cpp": Language("cpp", "//", True, _C_SIG, _C_IMP),
    "java": Language("java", "//", True, _C_SIG, _NONE),
    "css": Language("css", "/*", True, _NONE, _NONE),
    "shell": Language("shell", "#", False, re.compile(r"^\s*\w+\s*\(\)\s*\{.*$", re.M), _NONE),
    "sql": Language("sql", "--", False, _NONE, _NONE),
    "markdown": Language("markdown", "<!--", False, re.compile(r"^#{1,3} .*$", re.M), _NONE),
    "text": Language("text", "#", False, _NONE, _NONE),
}
EXTENSIONS = {
    ".py": "python", ".pyi": "python", ".ts": "typescript", ".tsx": "typescript", ".js": "javascript",
    ".jsx": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".go": "go", ".rs": "rust", ".c": "c",
    ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".hpp": "cpp", ".java": "java", ".css": "css", ".sh": "shell",
    ".bash": "shell", ".sql": "sql", ".md": "markdown",
}


def language_for(path: str, declared: str | None = None) -> Language:
    """The declared language if Keel knows it, else by extension; unknown files are plain text (still completed)."""
    if declared and declared.lower() in LANGUAGES:
        return LANGUAGES[declared.lower()]
    ext = posixpath.splitext(path.lower())[1]
    return LANGUAGES[EXTENSIONS.get(ext, "text")]


def signatures(text: str, language: Language, limit: int = 40) -> str:
    """The definition lines of a file, one per line: what another file needs to call into it."""
    lines = [m.group(0).rstrip() for m in language.signature.finditer(text[:MAX_SCAN_CHARS])]
    return "\n".join(line[:160] for line in lines[:limit])


def imported_paths(text: str, path: str, language: Language, known: list[str]) -> list[str]:
    """Paths among `known` that the file imports (relative JS/TS imports, Python modules, C includes)."""
    found: list[str] = []
    base = posixpath.dirname(path)
    stems: dict[str, str] = {}  # path without extension -> the first known path with it
    for candidate in known:
        stems.setdefault(posixpath.splitext(candidate)[0], candidate)
    for match in language.imports.finditer(text[:MAX_SCAN_CHARS]):
        target = next((g for g in match.groups() if g), None)
        if not target:
            continue
        options = []
        if language.name == "python":
            dotted = target.lstrip(".").replace(".", "/")
            options = [dotted, posixpath.join(base, dotted), dotted + "/__init__"]
        elif target.startswith("."):
            options = [posixpath.normpath(posixpath.join(base, target))]
            options.append(posixpath.splitext(options[0])[0])
        else:
            options = [target, posixpath.join(base, target)]
        for option in options:
            hit = stems.get(option) or (option if option in known else None)
            if hit and hit != path and hit not in found:
                found.append(hit)
                break
    return found


def similar_paths(path: str, known: list[str]) -> list[str]:
    """Files whose names share the stem: `x.test.ts` and `x.spec.ts` for `x.ts`, `test_x.py` for `x.py`."""
    name = posixpath.basename(path)
    stem = name.split(".")[0]
    if stem.startswith("test_"):
        stem = stem[5:]
    if not stem:
        return []
    out = []
    for other in known:
        if other == path:
            continue
        other_name = posixpath.basename(other)
        other_stem = other_name.split(".")[0]
        if other_stem.startswith("test_"):
            other_stem = other_stem[5:]
        if other_stem == stem or other_stem.endswith("_" + stem) or stem.endswith("_" + other_stem):
            out.append(other)
    return out
