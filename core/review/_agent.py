"""The review agent: triage → plan → tool calls in parallel (asyncio) → follow-up rounds → synthesis.

Deterministic findings (AST rules, ruff, bandit) are always the backbone of a review; the model (through the
gateway, feature "review") explains them and suggests fixes, and with a capable non-embedded tier it also
reviews the diff in full. Rounds and wall time are bounded; tools that run over are stopped and reported.
Text in the diff is data: nothing in it can remove a finding or change the verdict, which is computed from
the comments alone.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Callable, TypedDict

from core.config import get_settings
from core.review._comments import (
    CATEGORIES,
    SEVERITIES,
    Comment,
    Severity,
    at_least,
    finish,
    merge_model_comments,
    severity_rank,
    specificity,
    verdict,
)
from core.review._diff import Diff, FileDiff, parse_diff
from core.review._errors import ReviewError
from core.review._checkout import prepare_checkout
from core.review._repo import check_repo, git_archive, git_diff, repo_key, run_sync
from core.review._rules import (
    analyse_python,
    defines_query,
    injection_text,
    linter_comment,
    n_plus_one_comment,
    removed_guards,
)
from core.review._tools import ToolCall, ToolResult, ToolSpec, execute

_logger = logging.getLogger(__name__)
ENGINE_VERSION = "review-2"
MAX_REVIEW_FILES = 40
MAX_REVIEW_LINES = 3000
MAX_MODEL_DIFF_CHARS = 2400
MAX_MODEL_FINDINGS = 6
_RISKY = re.compile(r"\b(select|insert|update|delete|execute|subprocess|os\.system|eval|exec|pickle|yaml\.load|"
                    r"password|secret|token|auth|except|open\(|shell=True|\.format\(|f\")", re.IGNORECASE)
_APPROVAL = re.compile(r"\b(approve[ds]?|lgtm|looks good|no (issues|problems)|safe to merge)\b", re.IGNORECASE)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")

Progress = Callable[[float, str], None]


@dataclass
class ReviewOptions:
    use_llm: bool = True
    use_cache: bool = True
    parallel: bool = True
    max_iterations: int = 3
    time_budget_s: float = 150.0
    tool_timeout_s: float | None = None  # lower every tool's own limit (tests, benchmarks)
    max_files: int = MAX_REVIEW_FILES
    max_lines: int = MAX_REVIEW_LINES
    user: str | None = None
    tools: dict[str, ToolSpec] | None = None  # another tool registry (tests)
    model: str | None = None  # a tier name or provider/model to force (evals); None = triage decides
    model_budget_s: float = 60.0  # the synthesis call's share of the time budget
    apply_dismissals: bool = True  # False: report everything (evals measure the detector, not a user's choices)
    feature: str = "review"  # the gateway feature the model call is logged under ("eval" from the eval runner)
    task: str | None = None  # the logged task (default: the mode, explain or full)
    # The CLI: the person running `keel review` named this repository on their own command line, so it is allowed
    # without KEEL_REVIEW_ROOTS (those roots guard the server, where the person naming a path is a remote user).
    own_repo: bool = False


def _repo_for(repo: str | Path, options: ReviewOptions) -> Path:
    if not options.own_repo:
        return check_repo(repo)
    from core.review._errors import RepoNotAllowed

    if repo is None or not str(repo).strip() or "\x00" in str(repo):
        raise RepoNotAllowed("no repository given: pass the path of a local repository (--repo PATH)")
    resolved = Path(repo).expanduser().resolve()
    if not resolved.is_dir():
        raise RepoNotAllowed(f"repository {resolved} is not a directory")
    return resolved


class ReviewBranch(StrEnum):
    """Every path triage can send a review down (tier → tool rounds → synthesis). Branch coverage
    (`keel eval coverage`) lists these, so a new path shows up uncovered until an eval case takes it."""

    TOOLS_ONLY = "tools_only"  # the model is switched off: tool findings only
    FAST_EXPLAIN = "fast_explain"  # low risk, embedded model explains the tool findings
    CAPABLE_EXPLAIN = "capable_explain"  # risky or large, embedded model explains
    FAST_FULL = "fast_full"  # low risk, a hosted model reviews too
    CAPABLE_FULL = "capable_full"  # risky or large, a hosted model reviews too
    PINNED_MODEL = "pinned_model"  # a provider/model forced by the caller (evals, compare)


@dataclass
class Triage:
    tier: str
    mode: str  # explain (the model explains tool findings) | full (the model reviews too) | tools (no model)
    risk: float
    reasons: list[str]

    @property
    def branch(self) -> ReviewBranch:
        if self.mode == "tools":
            return ReviewBranch.TOOLS_ONLY
        if self.tier not in ("fast", "capable"):
            return ReviewBranch.PINNED_MODEL
        return ReviewBranch(f"{self.tier}_{self.mode}")

    def as_dict(self) -> dict:
        return {"tier": self.tier, "mode": self.mode, "risk": round(self.risk, 3), "reasons": self.reasons,
                "branch": str(self.branch)}


@dataclass
class ReviewResult:
    id: int | None
    diff_hash: str
    cache_key: str
    repo: str
    verdict: str
    summary: str
    comments: list[Comment]
    files: list[dict]
    notices: list[str]
    timeline: list[dict]
    triage: dict
    stats: dict
    model: str
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    wall_ms: float = 0.0
    cached: bool = False
    model_summary: str = ""
    iterations: int = 0
    created_at: float = field(default_factory=time.time)
    diff_text: str = ""

    def as_dict(self, *, with_diff: bool = False) -> dict:
        data = {k: v for k, v in self.__dict__.items() if k not in ("comments", "diff_text")}
        data["comments"] = [c.as_dict() for c in self.comments]
        if with_diff:
            data["diff_text"] = self.diff_text
        return data

    def by_line(self) -> dict[tuple[str, int], list[Comment]]:
        grouped: dict[tuple[str, int], list[Comment]] = {}
        for c in self.comments:
            grouped.setdefault((c.path, c.line), []).append(c)
        return grouped


# -- triage and planning ---------------------------------------------------------------------------------------


def triage(diff: Diff, files: list[FileDiff], use_llm: bool, forced: str | None = None) -> Triage:
    """Cheap and deterministic: size and risky constructs pick the tier; a non-embedded tier reviews in full."""
    added = [t for f in files for t in f.added.values()]
    hits = sum(1 for t in added if _RISKY.search(t))
    size = min(1.0, len(added) / 400)
    risk = min(1.0, 0.5 * size + 0.5 * min(1.0, hits / 5))
    reasons = [f"{len(added)} added lines in {len(files)} file(s)", f"{hits} line(s) touching SQL, processes, "
               "secrets or exception handling"]
    tier = "fast" if risk < 0.3 else "capable"
    settings = get_settings()
    if forced:
        tier = forced
    if not use_llm:
        return Triage(tier="none", mode="tools", risk=risk, reasons=reasons + ["the model is switched off"])
    chain = settings.tiers.get(tier) or settings.tiers.get("capable") or []
    provider = settings.providers.get(chain[0].split("/", 1)[0]) if chain else None
    if forced and "/" in forced:
        provider = settings.providers.get(forced.split("/", 1)[0])
    mode = "full" if provider is not None and provider.kind != "embedded" else "explain"
    if mode == "explain":
        reasons.append("the tier is the small embedded model: it explains the tool findings")
    return Triage(tier=tier, mode=mode, risk=risk, reasons=reasons)


def choose_files(diff: Diff, max_files: int, max_lines: int) -> tuple[list[FileDiff], list[str]]:
    """The files the review reads within its budget, riskiest first; notices say what was left out and why."""
    notices = []
    binary = [f for f in diff.files if f.binary]
    if binary:
        names = ", ".join(f.display_path for f in binary[:5]) + (" …" if len(binary) > 5 else "")
        notices.append(f"{len(binary)} binary file(s) were not reviewed: {names}")
    text_files = [f for f in diff.files if not f.binary and f.path and f.status != "deleted"]
    ranked = sorted(text_files, key=lambda f: (not f.path.endswith(".py"),
                                               -sum(1 for t in f.added.values() if _RISKY.search(t))))
    chosen: list[FileDiff] = []
    lines = 0
    for f in ranked:
        n = len(f.added)
        if len(chosen) >= max_files or (chosen and lines + n > max_lines):
            continue
        if n > max_lines:  # one huge file: review its first max_lines added lines only
            notices.append(f"{f.path}: {n:,} added lines; only the first {max_lines:,} were reviewed")
        chosen.append(f)
        lines += min(n, max_lines)
    skipped = [f for f in text_files if f not in chosen]
    if skipped:
        skipped_lines = sum(len(f.added) for f in skipped)
        shown = ", ".join(f"{f.path} (+{len(f.added)}/-{f.removed_count})" for f in skipped[:8])
        more = f" and {len(skipped) - 8} more" if len(skipped) > 8 else ""
        notices.append(f"Large diff: reviewed {len(chosen)} of {len(text_files)} files ({lines:,} of "
                       f"{lines + skipped_lines:,} added lines, riskiest first). Summarised without review: "
                       f"{shown}{more}. Split the PR to review the rest.")
    order = {id(f): i for i, f in enumerate(diff.files)}
    return sorted(chosen, key=lambda f: order[id(f)]), notices


def _changed_functions(f: FileDiff) -> list[str]:
    names = []
    for h in f.hunks:
        match = re.match(r"(?:async\s+)?def\s+(\w+)|class\s+(\w+)", h.header)
        if match:
            names.append(match.group(1) or match.group(2))
    for text in f.added.values():
        match = re.match(r"\s*(?:async\s+)?def\s+(\w+)", text)
        if match:
            names.append(match.group(1))
    return list(dict.fromkeys(n for n in names if not n.startswith("__")))


def plan(files: list[FileDiff]) -> list[ToolCall]:
    """Round 1: lint and security-scan the changed Python files, read around each hunk, find callers of the
    functions the PR touches."""
    py = [f.path for f in files if f.path.endswith(".py")]
    calls = []
    if py:
        calls.append(ToolCall("run_linter", {"paths": py, "linter": "ruff"}, 1, "correctness and quality"))
        calls.append(ToolCall("run_linter", {"paths": py, "linter": "bandit"}, 1, "security"))
    for f in files[:12]:
        for h in f.hunks[:3]:
            calls.append(ToolCall("read_lines", {"path": f.path, "start": max(1, h.new_start - 5),
                                                 "end": h.new_start + h.new_count + 5}, 1, "context of the change"))
        for name in _changed_functions(f)[:3]:
            calls.append(ToolCall("search_codebase", {"query": name}, 1, f"callers of {name}()"))
    return calls


# -- the agent -------------------------------------------------------------------------------------------------


class _Run:
    def __init__(self, sandbox, options: ReviewOptions, progress: Progress | None):
        self.sandbox = sandbox
        self.options = options
        self.progress = progress or (lambda fraction, message: None)
        self.clock = time.perf_counter()
        self.deadline = self.clock + options.time_budget_s
        self.timeline: list[ToolResult] = []
        self.extra_timeline: list[dict] = []
        self.notices: list[str] = []
        self.anchors: dict[str, dict[int, str]] = {}  # path → context lines a removed-guard comment sits on

    def remaining(self) -> float:
        return self.deadline - time.perf_counter()

    async def run_round(self, calls: list[ToolCall]) -> list[ToolResult]:
        if not calls:
            return []
        budget = max(0.1, self.remaining())
        if self.options.parallel:
            tasks = [asyncio.create_task(execute(self.sandbox, c, clock_start=self.clock, tools=self.options.tools,
                                                 timeout_s=self.options.tool_timeout_s)) for c in calls]
            done, pending = await asyncio.wait(tasks, timeout=budget)
            for task in pending:
                task.cancel()
            results = []
            for call, task in zip(calls, tasks, strict=True):
                if task in done:
                    results.append(task.result())
                else:
                    now = time.perf_counter() - self.clock
                    results.append(ToolResult(call, "timeout", error="stopped at the review's time limit",
                                              started_s=now - budget, ended_s=now))
        else:
            results = []
            for call in calls:
                if self.remaining() <= 0:
                    now = time.perf_counter() - self.clock
                    results.append(ToolResult(call, "timeout", error="not run: the review's time limit was reached",
                                              started_s=now, ended_s=now))
                    continue
                results.append(await execute(self.sandbox, call, clock_start=self.clock, tools=self.options.tools,
                                             timeout_s=min(self.options.tool_timeout_s or 1e9, self.remaining())))
        self.timeline.extend(results)
        return results


async def _analyse(run: _Run, files: list[FileDiff]) -> tuple[list[Comment], dict[str, list[tuple[int, str]]]]:
    """The AST rules on each changed Python file as the PR leaves it (in a thread: pure CPU)."""
    started = time.perf_counter()

    def work():
        comments, loops = [], {}
        for f in files:
            reviewable = f.reviewable
            comments_f = injection_text(reviewable)
            guards, anchors = removed_guards(f)
            comments_f += guards
            if anchors:
                run.anchors[f.path] = anchors
            if f.path.endswith(".py"):
                try:
                    source = run.sandbox.resolve(f.path).read_text(encoding="utf-8", errors="replace")
                except Exception:  # the diff's rules still run; only the file-level analysis is skipped
                    _logger.exception("cannot read %s for analysis", f.path)
                    source = ""
                analysis = analyse_python(source, reviewable)
                comments_f += analysis.comments
                loops[f.path] = analysis.loop_calls
            for c in comments_f:
                c.path = f.path
            comments += comments_f
        return comments, loops

    comments, loops = await asyncio.to_thread(work)
    ended = time.perf_counter()
    run.extra_timeline.append({"tool": "ast_rules", "args": {"files": len(files)}, "round": 1,
                               "reason": "SQL strings, swallowed exceptions, loops, off-by-one, removed guards, "
                                         "reviewer injection",
                               "status": "ok", "error": None, "started_s": round(started - run.clock, 4),
                               "ended_s": round(ended - run.clock, 4), "output_chars": 0, "truncated": False})
    return comments, loops


async def _resolve_loop_calls(run: _Run, loops: dict[str, list[tuple[int, str]]]) -> list[Comment]:
    """Follow-up rounds: look up each function called inside a new loop (and what it calls) to see whether
    it runs a database query — an N+1 the diff alone does not show."""
    wanted = {name for calls in loops.values() for _, name in calls}
    if not wanted:
        return []
    known: dict[str, dict | None] = {}  # name → {"query": "conn.execute"|None, "calls": [...]}
    frontier = sorted(wanted)[:12]
    for depth in range(2, 2 + max(0, run.options.max_iterations - 1)):
        if not frontier or run.remaining() <= 0:
            break
        results = await run.run_round([ToolCall("get_function_definition", {"name": n}, depth,
                                                "does this call run a query?") for n in frontier])
        next_frontier = []
        for result in results:
            name = result.call.args["name"]
            definitions = result.data if result.status == "ok" else []
            if not definitions:
                known[name] = None
                continue
            source = definitions[0]["source"]
            body = source.split("\n", 1)[1] if "\n" in source else ""
            called = [c for c in dict.fromkeys(re.findall(r"\b([a-z_][a-z0-9_]*)\s*\(", body))
                      if c not in known and c != name and len(c) > 2]
            known[name] = {"query": defines_query(body), "calls": called}
            next_frontier += [c for c in called if c not in frontier]
        frontier = [n for n in dict.fromkeys(next_frontier) if n not in known][:12]

    def runs_query(name: str, seen: frozenset = frozenset()) -> str | None:
        """The call chain from `name` to a query ("fetch_one() → conn.execute"), or None."""
        info = known.get(name)
        if not info or name in seen:
            return None
        if info["query"]:
            return info["query"]
        for callee in info["calls"]:
            found = runs_query(callee, seen | {name})
            if found:
                return f"{callee}() → {found}"
        return None

    comments = []
    for path, calls in loops.items():
        for line, name in calls:
            via = runs_query(name)
            if via:
                c = n_plus_one_comment(line, name, via)
                c.path = path
                comments.append(c)
    return comments


def _model_excerpt(files: list[FileDiff], focus: list[Comment]) -> str:
    """The changed lines the model sees: hunks around the findings first, within a character budget."""
    focus_lines = {(c.path, c.line) for c in focus}
    chunks = []
    ordered = sorted(files, key=lambda f: not any(p == f.path for p, _ in focus_lines))
    for f in ordered:
        for h in f.hunks:
            rows = []
            for kind, _, new, text in h.lines:
                if kind == "-":
                    continue
                rows.append(f"{new:>4} {'+' if kind == '+' else ' '} {text[:160]}")
            chunks.append(f"--- {f.path}\n" + "\n".join(rows))
    text = "\n".join(chunks)
    if len(text) > MAX_MODEL_DIFF_CHARS:
        text = text[:MAX_MODEL_DIFF_CHARS] + "\n[... diff shortened ...]"
    return text


def _schema(n_findings: int, mode: str, paths: list[str]) -> dict:
    """Explain mode (a small model): exactly one {explanation, fix} per finding, in order, nothing else to get
    wrong. Full mode: notes by finding id, the model's own comments (paths from the diff only) and a summary."""
    def short(n):
        return {"type": "string", "minLength": 1, "maxLength": n, "pattern": r'^[^"\\\x00-\x1f]{1,%d}$' % n}

    if mode != "full":
        note = {"type": "object", "additionalProperties": False, "required": ["explanation", "fix"],
                "properties": {"explanation": short(160), "fix": short(120)}}
        return {"type": "object", "additionalProperties": False, "required": ["notes"],
                "properties": {"notes": {"type": "array", "minItems": n_findings, "maxItems": n_findings,
                                         "items": note}}}
    notes = {"type": "array", "maxItems": max(0, n_findings), "items": {
        "type": "object", "additionalProperties": False, "required": ["id", "explanation", "fix"],
        "properties": {"id": {"type": "integer", "minimum": 1, "maximum": max(1, n_findings)},
                       "explanation": short(200), "fix": short(160)}}}
    comments = {"type": "array", "maxItems": 8, "items": {
        "type": "object", "additionalProperties": False,
        "required": ["path", "line", "severity", "category", "message", "fix"],
        "properties": {"path": {"type": "string", "enum": paths or [""]}, "line": {"type": "integer", "minimum": 1},
                       "severity": {"type": "string", "enum": [str(s) for s in SEVERITIES]},
                       "category": {"type": "string", "enum": list(CATEGORIES)},
                       "message": short(240), "fix": short(200)}}}
    return {"type": "object", "additionalProperties": False, "required": ["notes", "comments", "summary"],
            "properties": {"notes": notes, "comments": comments, "summary": short(240)}}


class Synthesis(TypedDict, total=False):
    """What the model step adds to a review: why it was skipped or failed, or its usage, counts and comments."""

    skipped: str
    error: str | None
    model: str
    tokens_in: int
    tokens_out: int
    cost_usd: float
    request_id: str
    added: int  # the model's notes attached to tool findings
    rejected: int  # notes and comments dropped (ungrounded, off the diff, approving)
    summary: str
    comments: list[Comment]  # full mode: the model's own findings on added lines


async def _synthesise(run: _Run, tri: Triage, files: list[FileDiff], comments: list[Comment]) -> Synthesis:
    """One schema-constrained model call; its output is validated and only ever adds to the review."""
    from core.llm import CancelToken, LLMError, LLMRequest, get_gateway
    from core.prompts import load

    focus = sorted(comments, key=lambda c: (severity_rank(c.severity), -c.confidence))[:MAX_MODEL_FINDINGS]
    if tri.mode == "explain" and not focus:
        return {"skipped": "no findings to explain"}
    prompt = load("review/full" if tri.mode == "full" else "review/explain")
    findings = "\n".join(f"{i}. {c.path}:{c.line} [{c.category}/{c.severity}] {c.message} | code: "
                         f"{c.code.strip()[:120]}" for i, c in enumerate(focus, 1)) or "(none)"
    paths = [f.path for f in files]
    overrides = {"tier": tri.tier}
    if run.options.model and "/" in run.options.model:
        overrides = {"tier": "capable", "target": run.options.model}
    max_tokens = min(prompt.max_tokens, 30 + 80 * len(focus)) if tri.mode == "explain" else prompt.max_tokens
    request = LLMRequest.from_prompt(prompt, {"findings": findings, "diff": _model_excerpt(files, focus)},
                                     feature=run.options.feature, task=(run.options.task or tri.mode)[:64],
                                     user=run.options.user,
                                     json_schema=_schema(len(focus), tri.mode, paths), max_tokens=max_tokens,
                                     temperature=prompt.temperature, **overrides)
    gateway = get_gateway()
    cancel = CancelToken()
    started = time.perf_counter()
    entry = {"tool": f"model:{tri.mode}", "args": {"tier": tri.tier, "findings": len(focus)}, "round": "synthesis",
             "reason": "explain findings" + (" and review in full" if tri.mode == "full" else ""),
             "started_s": round(started - run.clock, 4), "output_chars": 0, "truncated": False}
    error: str | None
    try:
        budget = max(1.0, min(run.remaining(), run.options.model_budget_s))
        completion = await asyncio.wait_for(asyncio.to_thread(gateway.complete, request, cancel), timeout=budget)
        status, error = "ok", None
    except (TimeoutError, asyncio.TimeoutError):
        cancel.cancel()
        status, error = "timeout", "the model did not answer within the review's time limit"
        completion = None
    except LLMError:  # the gateway's request log keeps the detail; people see what it means for them
        status, error = "error", "the model was busy or unavailable"
        completion = None
    entry.update(status=status, error=error)
    entry["ended_s"] = round(time.perf_counter() - run.clock, 4)
    run.extra_timeline.append(entry)
    if completion is None:
        run.notices.append(f"The model did not explain the findings this time ({error}); the comments "
                           "below come from the tools.")
        return {"error": error}
    entry["output_chars"] = len(completion.text)
    cost = completion.cost_usd
    out: Synthesis = {"model": f"{completion.provider}/{completion.model}", "tokens_in": completion.tokens_in,
           "tokens_out": completion.tokens_out, "cost_usd": cost, "request_id": completion.request_id,
           "added": 0, "rejected": 0, "summary": ""}
    data = completion.json if isinstance(completion.json, dict) else None
    if data is None:
        run.notices.append("The model's answer was not valid JSON for the review schema; it was ignored.")
        return out
    blocking = any(at_least(c.severity, Severity.MAJOR) for c in comments)
    seen = set()
    for position, note in enumerate(data.get("notes") or [], 1):
        index = note.get("id", position) if tri.mode == "full" else position
        if not isinstance(index, int) or not 1 <= index <= len(focus) or index in seen:
            out["rejected"] += 1
            continue
        seen.add(index)
        target = focus[index - 1]
        explanation, fix = str(note.get("explanation", "")).strip(), str(note.get("fix", "")).strip()
        if not _grounded(explanation, target) or _APPROVAL.search(explanation + " " + fix):
            out["rejected"] += 1
            continue
        target.explanation = explanation
        same_start = fix.lower().split()[:6] == explanation.lower().split()[:6]
        new_fix = fix.lower() not in target.suggestion.lower()
        if fix and not same_start and new_fix and _grounded(fix, target, loose=True):
            target.explanation += f" Suggested: {fix}"
        out["added"] += 1
    if tri.mode == "full":
        added_lines = {f.path: f.reviewable for f in files}
        for item in data.get("comments") or []:
            severity = Severity.parse(item.get("severity"))
            if severity is None:  # the schema names the severities; an answer outside it is not a finding
                out["rejected"] += 1
                continue
            c = Comment(path=item.get("path", ""), line=int(item.get("line") or 0), severity=severity,
                        category=item.get("category"), message=str(item.get("message", "")).strip(),
                        suggestion=str(item.get("fix", "")).strip(), source="model", confidence=0.6, rule="model")
            if c.line not in added_lines.get(c.path, {}) or _APPROVAL.search(c.message):
                out["rejected"] += 1
                continue
            c.code = added_lines[c.path][c.line]
            if specificity(c) < 0.4:
                out["rejected"] += 1
                continue
            out.setdefault("comments", []).append(c)
    summary = str(data.get("summary", "")).strip()
    if summary and not (blocking and _APPROVAL.search(summary)):
        out["summary"] = summary
    elif summary:
        run.notices.append("The model's summary contradicted the findings (it approved the change) and was dropped.")
    return out


def _repetitive(text: str) -> bool:
    """A small model looping: some run of five words occurs twice."""
    words = text.lower().split()
    grams = [" ".join(words[i:i + 5]) for i in range(max(0, len(words) - 4))]
    return len(grams) != len(set(grams))


_TOPICS = {  # words an explanation of each kind of finding is expected to use
    "security": {"sql", "injection", "inject", "query", "parameter", "parameters", "placeholder", "placeholders",
                 "escape", "shell", "command", "untrusted", "attacker", "sanitize", "subprocess", "reviewer"},
    "correctness": {"exception", "exceptions", "error", "errors", "except", "raise", "log", "logged", "silently",
                    "swallow", "swallows", "index", "indexerror", "range", "len", "bound", "last", "off", "crash"},
    "performance": {"query", "queries", "loop", "iteration", "round", "trip", "trips", "batch", "join", "n+1",
                    "database", "fetch", "once"},
    "quality": {"unused", "name", "import", "variable", "readability", "exception", "broad", "catch"},
}


def _grounded(text: str, comment: Comment, *, loose: bool = False) -> bool:
    """Does the model's text talk about this finding's kind of problem (its vocabulary), without looping?"""
    if len(text) < (8 if loose else 25) or _repetitive(text):
        return False
    words = {w.lower() for w in re.findall(r"[A-Za-z+_]+", text)}
    return bool(words & _TOPICS.get(comment.category, set()))


def _summary(comments: list[Comment], files: list[FileDiff], diff: Diff) -> str:
    counts = {s: sum(1 for c in comments if c.severity == s) for s in SEVERITIES}
    shown = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no comments"
    v = verdict(comments)
    head = {"request_changes": "Changes requested", "comment": "Comments", "approve": "No problems found"}[v]
    return (f"{head}: {shown} on {len(files)} reviewed file(s), +{diff.added_lines}/-{diff.removed_lines} lines.")


def cache_key_for(diff_hash: str, repo: str, tri: Triage, options: ReviewOptions) -> tuple[str, str]:
    settings = get_settings()
    if tri.mode == "tools":
        model_key = "tools-only"
    else:
        chain = [options.model] if options.model and "/" in options.model else settings.tiers.get(tri.tier, [])
        model_key = f"{tri.tier}:{','.join(chain)}:{tri.mode}"
    from core.prompts import load

    prompt_versions = f"{load('review/explain').version}.{load('review/full').version}"
    raw = "\x1f".join((diff_hash, repo, model_key, ENGINE_VERSION, prompt_versions))
    return hashlib.sha256(raw.encode()).hexdigest(), model_key


def _from_cache(diff: Diff, files: list[FileDiff], key_repo: str, cache_key: str, options: ReviewOptions,
                started: float) -> ReviewResult | None:
    """The stored review under `cache_key` (this diff, repository, tier and prompts), dismissed comments left out,
    or None."""
    from core.review import _store

    stored = _store.load_review(cache_key)
    if stored is None:
        return None
    decided = _store.decisions(key_repo) if options.apply_dismissals else {}
    dismissed = {f for f, d in decided.items() if d == "dismissed"}
    payload, comments = stored
    kept = [c for c in comments if c.fingerprint not in dismissed]
    for c in kept:
        c.status = decided.get(c.fingerprint, "open")
    n_hidden = len(comments) - len(kept)
    stats = dict(payload.get("stats", {}), dismissed_suppressed=payload.get("stats", {}).get(
        "dismissed_suppressed", 0) + n_hidden)
    wall = (time.perf_counter() - started) * 1000
    return ReviewResult(
        id=payload["id"], diff_hash=diff.hash, cache_key=cache_key, repo=key_repo, verdict=verdict(kept),
        summary=_summary(kept, files, diff), comments=kept, files=payload["files"],
        notices=payload["notices"] + [
            f"Served from the review cache (reviewed {_when(payload['created_at'])} in "
            f"{payload['wall_ms'] / 1000:.1f} s; this time {wall:.0f} ms)."],
        timeline=payload["timeline"], triage=payload["triage"], stats=stats, model=payload["model"],
        tokens_in=payload["tokens_in"], tokens_out=payload["tokens_out"], cost_usd=payload["cost_usd"],
        wall_ms=wall, cached=True, model_summary=payload.get("model_summary", ""),
        iterations=payload.get("iterations", 0), created_at=payload["created_at"], diff_text=diff.text)


def cached_review(diff_text: str | bytes | None, repo: str | Path, options: ReviewOptions | None = None, *,
                  refs: tuple[str | None, str | None] | None = None) -> ReviewResult | None:
    """What `review_async` (or, with `refs` = (base, head), `review_refs_async`) would serve from its cache, looked up
    here and now: no tool, model or job worker runs, so a re-run does not queue behind reviews still running.
    None when this diff was not reviewed yet."""
    options = options or ReviewOptions()
    started = time.perf_counter()
    repo_path = _repo_for(repo, options)
    if refs is not None:
        diff_text = run_sync(refs_diff(repo_path, refs[0], refs[1] or "HEAD"))
    diff = parse_diff(diff_text or "")
    files, _ = choose_files(diff, options.max_files, options.max_lines)
    if not files:
        return None
    key_repo = repo_key(repo_path)
    cache_key, _ = cache_key_for(diff.hash, key_repo, triage(diff, files, options.use_llm, options.model), options)
    return _from_cache(diff, files, key_repo, cache_key, options, started)


async def review_async(diff_text: str | bytes, repo: str | Path, options: ReviewOptions | None = None, *,
                       progress: Progress | None = None, tree_ref: str | None = None) -> ReviewResult:
    """Review a unified diff against a repository: its files at the PR's base or head (detected per file), or the
    tree at `tree_ref` of a git repository."""
    from core.review import _store

    options = options or ReviewOptions()
    progress = progress or (lambda fraction, message: None)
    started = time.perf_counter()
    repo_path = _repo_for(repo, options)
    key_repo = repo_key(repo_path)
    diff = parse_diff(diff_text)
    files, notices = choose_files(diff, options.max_files, options.max_lines)
    if not files:
        raise ReviewError("nothing to review: the diff only deletes files or changes binary files"
                          + (f" ({notices[0]})" if notices else ""))
    tri = triage(diff, files, options.use_llm, options.model)
    cache_key, model_key = cache_key_for(diff.hash, key_repo, tri, options)
    if options.use_cache:
        hit = _from_cache(diff, files, key_repo, cache_key, options, started)
        if hit is not None:
            progress(1.0, "cached review")
            return hit
    decided = _store.decisions(key_repo) if options.apply_dismissals else {}
    dismissed = {f for f, d in decided.items() if d == "dismissed"}

    progress(0.05, f"preparing a working copy of {len(files)} file(s)")
    tree_tar = await git_archive(repo_path, tree_ref) if tree_ref else None
    copy = await asyncio.to_thread(prepare_checkout, repo_path, diff, files, tree_tar)
    notices += copy.notices
    try:
        run = _Run(copy.sandbox(), options, progress)
        run.notices = notices
        progress(0.15, "running linters, security scan and searches in parallel")
        round1 = plan(files)
        results, (rule_comments, loops) = await asyncio.gather(run.run_round(round1), _analyse(run, files))
        iterations = 1
        progress(0.45, "following up: functions called inside new loops")
        n_plus_one = await _resolve_loop_calls(run, loops)
        iterations += len({r.call.round for r in run.timeline if r.call.round != 1})
        raw: list[Comment] = list(rule_comments) + n_plus_one
        for r in results:
            if r.call.name == "run_linter" and r.status == "ok":
                raw += [c for c in (linter_comment(f) for f in r.data) if c is not None]
        failed = [r for r in run.timeline if r.status != "ok"]
        if failed:
            run.notices.append(f"{len(failed)} tool call(s) did not complete: " + "; ".join(
                f"{r.call.name} ({r.status}: {r.error})" for r in failed[:4]))
        reviewable = {f.path: {**run.anchors.get(f.path, {}), **f.reviewable} for f in files}
        hidden: list[Comment] = []
        removals = {f.path: f.after_removals for f in files}
        comments, stats = finish(raw, reviewable, dismissed, suppressed_out=hidden, removals=removals)
        synthesis: Synthesis = {}
        if tri.mode != "tools":
            progress(0.6, f"asking the {tri.tier} model to explain {min(len(comments), MAX_MODEL_FINDINGS)} finding(s)")
            synthesis = await _synthesise(run, tri, files, comments)
            if synthesis.get("comments"):
                comments, dropped = merge_model_comments(comments, synthesis["comments"], reviewable, dismissed)
                synthesis["rejected"] = synthesis.get("rejected", 0) + dropped
        if run.remaining() <= 0:
            run.notices.append(f"The review reached its {options.time_budget_s:.0f} s time limit; what finished "
                               "in time is shown.")
        progress(0.95, "saving")
        for c in comments:
            c.status = decided.get(c.fingerprint, "open")
        file_rows = [{"path": f.display_path, "status": f.status, "added": len(f.added), "removed": f.removed_count,
                      "reviewed": f in files} for f in diff.files]
        timeline = sorted([r.as_dict() for r in run.timeline] + run.extra_timeline, key=lambda e: e["started_s"])
        wall = (time.perf_counter() - started) * 1000
        result = ReviewResult(
            id=None, diff_hash=diff.hash, cache_key=cache_key, repo=key_repo, verdict=verdict(comments),
            summary=_summary(comments, files, diff), comments=comments, files=file_rows, notices=run.notices,
            timeline=timeline, triage=tri.as_dict(), stats=stats, model=synthesis.get("model", model_key),
            tokens_in=synthesis.get("tokens_in", 0), tokens_out=synthesis.get("tokens_out", 0),
            cost_usd=synthesis.get("cost_usd", 0.0), wall_ms=wall, model_summary=synthesis.get("summary", ""),
            iterations=iterations, diff_text=diff.text)
        result.stats["model_notes_added"] = synthesis.get("added", 0)
        result.stats["model_notes_rejected"] = synthesis.get("rejected", 0)
        payload = {k: v for k, v in result.as_dict().items() if k not in ("comments", "id", "cached")}
        result.id = _store.save_review(
            cache_key=cache_key, diff_hash=diff.hash, repo_key=key_repo, model_key=model_key,
            engine_version=ENGINE_VERSION, user=options.user, verdict=result.verdict, files=len(files),
            added_lines=diff.added_lines, tokens_in=result.tokens_in, tokens_out=result.tokens_out,
            cost_usd=result.cost_usd, wall_ms=wall, payload=payload,
            comments=comments + hidden)
        progress(1.0, "done")
        return result
    finally:
        copy.remove()


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


async def review_refs_async(repo: str | Path, base: str | None, head: str | None = "HEAD",
                            options: ReviewOptions | None = None, *, progress: Progress | None = None) -> ReviewResult:
    """Review what `head` changes since it left `base` (`git diff base...head`, the way CI sees a PR), with the tools
    reading the tree at `head`. `base` None: origin/main (or origin/master, main, master)."""
    repo_path = _repo_for(repo, options or ReviewOptions())
    head = head or "HEAD"
    text = await refs_diff(repo_path, base, head)
    return await review_async(text, repo_path, options, progress=progress, tree_ref=head)


async def refs_diff(repo_path: Path, base: str | None, head: str) -> str:
    """`git diff base...head` of a local git repository (base None: origin/main, or the first default that exists)."""
    from core.review._checkout import default_base, merge_base

    if not (repo_path / ".git").exists():
        raise ReviewError(f"{repo_path} is not a git repository (no .git)")
    base = base or await default_base(repo_path)
    fork_point = await merge_base(repo_path, base, head)
    text = await git_diff(repo_path, fork_point, head)
    if not text.strip():
        raise ReviewError(f"{base} and {head} have no differences ({head} changes nothing since it left {base})")
    return text
