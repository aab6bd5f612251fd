"""The review agent's tools: search_codebase (ripgrep), run_linter (ruff, bandit), get_function_definition
(Python ast) and read_lines. Each runs in the sandbox with its own time limit; whatever goes wrong (a refused
path, a timeout, a crashed linter) comes back as a ToolResult with status and error, for the agent to read.
"""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from core.review._errors import SandboxError
from core.review._sandbox import Sandbox, check_text_argument

_logger = logging.getLogger(__name__)

MAX_FILE_BYTES = 512_000
MAX_LINES_PER_READ = 200
MAX_SEARCH_RESULTS = 50
# The ruff families that find bugs: S (bandit's checks, ported), B (bugbear), BLE/E722 (broad and bare except),
# PLE/PLW (pylint errors and warnings), PERF, and the RUF rules about real mistakes. Ignored: rules that fire on
# correct code in review (assert, subprocess without a shell, `global`, a loop variable reassigned).
RUFF_RULES = "E9,F,B,E722,BLE,PERF,PLE,PLW,S,RUF006,RUF008,RUF009,RUF013,RUF015,RUF016,RUF017,RUF018,RUF024,RUF027"
RUFF_IGNORE = "S101,S404,S603,S607,S311,PLW0603,PLW2901,PLW0602,PLW1641,PERF203"


@dataclass
class ToolCall:
    name: str
    args: dict[str, Any]
    round: int = 1
    reason: str = ""


@dataclass
class ToolResult:
    call: ToolCall
    status: str  # ok | error | refused | timeout
    data: Any = None
    error: str | None = None
    started_s: float = 0.0  # seconds since the review started
    ended_s: float = 0.0
    output_chars: int = 0
    truncated: bool = False

    def as_dict(self) -> dict:
        return {"tool": self.call.name, "args": self.call.args, "round": self.call.round, "reason": self.call.reason,
                "status": self.status, "error": self.error, "started_s": round(self.started_s, 4),
                "ended_s": round(self.ended_s, 4), "output_chars": self.output_chars, "truncated": self.truncated}


@dataclass
class ToolSpec:
    name: str
    fn: Callable[..., Awaitable[Any]]
    timeout_s: float
    description: str


@dataclass
class ToolOutput:
    data: Any
    truncated: bool = False
    extra: dict = field(default_factory=dict)


# -- search_codebase ---------------------------------------------------------------------------------------------


async def search_codebase(sandbox: Sandbox, query: str, path: str | None = None,
                          max_results: int = MAX_SEARCH_RESULTS, timeout_s: float = 10.0) -> ToolOutput:
    """Fixed-string search with `rg --json`; returns [{path, line, text}] (at most max_results)."""
    query = check_text_argument(query, "search query")
    max_results = max(1, min(int(max_results), MAX_SEARCH_RESULTS))
    argv = ["rg", "--json", "--fixed-strings", "--max-count", "20", "--max-filesize", "1M", "--no-config",
            "-e", query, "--"]
    argv.append(sandbox.relative(sandbox.resolve(path)) if path else ".")
    result = await sandbox.run(argv, timeout_s=timeout_s)
    if result.timed_out:
        raise TimeoutError(f"ripgrep took longer than {timeout_s:.0f} s")
    if result.returncode not in (0, 1) and not result.truncated:  # 1 = no match
        raise RuntimeError(f"ripgrep failed: {result.stderr.strip()[:300]}")
    hits = []
    for line in result.stdout.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if event.get("type") != "match":
            continue
        data = event["data"]
        hits.append({"path": data["path"].get("text", "").removeprefix("./"), "line": data["line_number"],
                     "text": data["lines"].get("text", "").rstrip("\n")[:300]})
        if len(hits) >= max_results:
            break
    return ToolOutput(hits, truncated=result.truncated or len(hits) >= max_results)


# -- run_linter --------------------------------------------------------------------------------------------------


async def run_linter(sandbox: Sandbox, paths: list[str], linter: str = "ruff", timeout_s: float = 30.0) -> ToolOutput:
    """ruff (correctness/quality) or bandit (security) on the given files; returns normalised findings
    [{path, line, code, message, severity, tool}]."""
    if linter not in ("ruff", "bandit"):
        raise SandboxError(f"unknown linter {linter!r} (ruff or bandit)")
    if not isinstance(paths, list) or not paths or len(paths) > 200:
        raise SandboxError("paths must be a list of 1-200 files")
    files = [sandbox.relative(sandbox.resolve(p)) for p in paths]
    if linter == "ruff":
        argv = ["ruff", "check", "--isolated", "--no-cache", "--select", RUFF_RULES, "--ignore", RUFF_IGNORE,
                "--output-format", "json", "--exit-zero", "--", *files]
    else:
        argv = ["bandit", "-q", "-f", "json", "--", *files]
    result = await sandbox.run(argv, timeout_s=timeout_s)
    if result.timed_out:
        raise TimeoutError(f"{linter} took longer than {timeout_s:.0f} s")
    try:
        payload = json.loads(result.stdout or "null")
    except json.JSONDecodeError:
        raise RuntimeError(f"{linter} gave no JSON (exit {result.returncode}): {result.stderr.strip()[:300]}") from None
    findings = []
    if linter == "ruff":
        for item in payload or []:
            findings.append({"path": sandbox.relative(sandbox.root / item["filename"]), "tool": "ruff",
                             "line": item["location"]["row"],
                             "end_line": (item.get("end_location") or {}).get("row") or item["location"]["row"],
                             "code": item.get("code") or "ruff",
                             "message": item.get("message", ""), "severity": "",
                             "fix": (item.get("fix") or {}).get("message")})
    else:
        for item in (payload or {}).get("results", []):
            findings.append({"path": sandbox.relative(sandbox.root / item["filename"]), "tool": "bandit",
                             "line": item["line_number"],
                             "end_line": max(item.get("line_range") or [item["line_number"]]),
                             "code": item["test_id"],
                             "message": item["issue_text"], "severity": item["issue_severity"],
                             "confidence": item.get("issue_confidence"), "fix": None})
    return ToolOutput(findings, truncated=result.truncated)


# -- get_function_definition -------------------------------------------------------------------------------------


def _definitions(source: str, name: str) -> list[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    return [n for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == name]


def _read_source(path) -> str:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise SandboxError(f"{path.name} is larger than {MAX_FILE_BYTES // 1000} kB")
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise SandboxError(f"{path.name} is a binary file")
    return data.decode("utf-8", "replace")


async def get_function_definition(sandbox: Sandbox, name: str, path: str | None = None,
                                  timeout_s: float = 10.0) -> ToolOutput:
    """The source of a function or class named `name` ({path, start, end, source}), found with ripgrep and ast."""
    name = check_text_argument(name, "function name", max_chars=100)
    if not name.replace("_", "a").isalnum() or name[0].isdigit():
        raise SandboxError(f"{name!r} is not a Python identifier")
    if path:
        candidates = [sandbox.relative(sandbox.resolve(path))]
    else:
        hits = await search_codebase(sandbox, f"def {name}(", timeout_s=timeout_s)
        hits_class = await search_codebase(sandbox, f"class {name}", timeout_s=timeout_s) if not hits.data else None
        candidates = list(dict.fromkeys(h["path"] for h in (hits.data or (hits_class.data if hits_class else []))
                                        if h["path"].endswith(".py")))
    found = []
    for rel in candidates[:10]:
        file = sandbox.resolve(rel)
        source = await asyncio.to_thread(_read_source, file)
        lines = source.splitlines()
        for node in _definitions(source, name):
            end = node.end_lineno or node.lineno
            found.append({"path": rel, "name": name, "start": node.lineno, "end": end,
                          "source": "\n".join(lines[node.lineno - 1:min(end, node.lineno + 79)])})
    return ToolOutput(found)


# -- read_lines --------------------------------------------------------------------------------------------------


async def read_lines(sandbox: Sandbox, path: str, start: int = 1, end: int | None = None,
                     timeout_s: float = 5.0) -> ToolOutput:
    """Lines start..end (1-based, inclusive, at most 200) of a text file: {path, start, end, lines}."""
    file = sandbox.resolve(path)
    if not file.is_file():
        raise SandboxError(f"{path} is not a file")
    start = max(1, int(start))
    end = int(end) if end is not None else start + 40
    if end < start:
        raise SandboxError("end must not be before start")
    end = min(end, start + MAX_LINES_PER_READ - 1)
    source = await asyncio.to_thread(_read_source, file)
    lines = source.splitlines()
    return ToolOutput({"path": sandbox.relative(file), "start": start, "end": min(end, len(lines)),
                       "lines": lines[start - 1:end]})


TOOLS: dict[str, ToolSpec] = {
    "search_codebase": ToolSpec("search_codebase", search_codebase, 10.0,
                                "find where a name or text occurs in the repository (ripgrep)"),
    "run_linter": ToolSpec("run_linter", run_linter, 45.0, "ruff (correctness, quality) or bandit (security)"),
    "get_function_definition": ToolSpec("get_function_definition", get_function_definition, 10.0,
                                        "the source of a function or class by name (Python ast)"),
    "read_lines": ToolSpec("read_lines", read_lines, 5.0, "a range of lines of a file"),
}


async def execute(sandbox: Sandbox, call: ToolCall, *, clock_start: float, tools: dict[str, ToolSpec] | None = None,
                  timeout_s: float | None = None) -> ToolResult:
    """Run one tool call; never raises: refusals, timeouts and crashes come back as data."""
    registry = tools or TOOLS
    started = time.perf_counter()
    result = ToolResult(call=call, status="ok", started_s=started - clock_start)
    spec = registry.get(call.name)
    try:
        if spec is None:
            raise SandboxError(f"unknown tool {call.name!r} (tools: {', '.join(registry)})")
        limit = min(spec.timeout_s, timeout_s) if timeout_s else spec.timeout_s
        args = dict(call.args)
        output = await asyncio.wait_for(spec.fn(sandbox, **args, timeout_s=limit), timeout=limit + 1.0)
        result.data = output.data
        result.truncated = output.truncated
    except SandboxError as exc:
        result.status, result.error = "refused", str(exc)
    except (TimeoutError, asyncio.TimeoutError) as exc:
        result.status = "timeout"
        result.error = str(exc) or f"{call.name} did not finish within its time limit and was stopped"
    except TypeError as exc:
        result.status, result.error = "error", f"bad arguments for {call.name}: {exc}"
    except Exception as exc:  # a tool failure is data for the agent, not a crash of the review
        _logger.exception("review tool %s failed", call.name)
        result.status, result.error = "error", f"{type(exc).__name__}: {exc}"[:500]
    result.ended_s = time.perf_counter() - clock_start
    result.output_chars = len(json.dumps(result.data, default=str)) if result.data is not None else 0
    return result
