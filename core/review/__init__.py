"""PR review: an agent that reviews a unified diff against a local repository with sandboxed tools (ripgrep,
ruff, bandit, Python ast) run in parallel, deterministic findings first and the model for explanation, and
posts structured, deduplicated comments on added lines; reviews are cached by diff hash in SQL.
"""

from __future__ import annotations

from pathlib import Path

from core.review._agent import (
    ENGINE_VERSION,
    ReviewOptions,
    ReviewResult,
    Triage,
    choose_files,
    plan,
    cached_review,
    review_async,
    review_refs_async,
    triage,
)
from core.review._comments import (
    CATEGORIES,
    SEVERITIES,
    SOURCES,
    Comment,
    Severity,
    at_least,
    collapse,
    fingerprint,
    severity_rank,
    specificity,
    verdict,
)
from core.review._diff import Diff, FileDiff, Hunk, decode_diff, diff_hash, parse_diff
from core.review._errors import DiffError, RepoNotAllowed, ReviewError, SandboxError
from core.review._export import comment_body, github_review, sarif
from core.review._repo import DEMO_REPO, allowed_roots, check_repo, git_refs, repo_key, run_sync
from core.review._samples import ExpectedFinding, SamplePR, demo_git_repo, get_sample, sample_prs
from core.review._sandbox import ProcessResult, Sandbox
from core.review._store import decide, decisions, recent_reviews, undo_decision
from core.review._tools import TOOLS, ToolCall, ToolResult, ToolSpec, execute
from core.review._jobs import (cached_result as cached_review_result, error_of as review_job_error,
                               result_of as review_job_result, submit_review, wait_for_review)


def review_diff(diff_text: str | bytes, repo: str | Path = DEMO_REPO, options: ReviewOptions | None = None, *,
                progress=None) -> ReviewResult:
    """Review a unified diff against a repository's files (blocking; see `review_async`)."""
    return run_sync(review_async(diff_text, repo, options, progress=progress))


def review_refs(repo: str | Path, base: str | None, head: str | None = "HEAD", options: ReviewOptions | None = None,
                *, progress=None) -> ReviewResult:
    """Review `git diff base...head` of a local repository (base None: origin/main), tools reading the tree at head."""
    return run_sync(review_refs_async(repo, base, head, options, progress=progress))


def review_sample(sample_id: str, options: ReviewOptions | None = None, *, progress=None) -> ReviewResult:
    return review_diff(get_sample(sample_id).diff, DEMO_REPO, options, progress=progress)


def list_refs(repo: str | Path) -> list[str]:
    return run_sync(git_refs(check_repo(repo)))


def dismiss(result: ReviewResult, comment: Comment, user: str | None = None) -> None:
    """Dismiss a suggestion for this repository: it is not raised again on re-review."""
    decide(result.repo, comment, "dismissed", user)


def accept(result: ReviewResult, comment: Comment, user: str | None = None) -> None:
    decide(result.repo, comment, "accepted", user)


__all__ = [
    "CATEGORIES", "DEMO_REPO", "ENGINE_VERSION", "SEVERITIES", "SOURCES", "TOOLS", "Comment", "Diff", "DiffError",
    "ExpectedFinding", "FileDiff", "Hunk", "ProcessResult", "RepoNotAllowed", "ReviewError", "ReviewOptions",
    "ReviewResult", "SamplePR", "Sandbox", "Severity", "SandboxError", "ToolCall", "ToolResult", "ToolSpec", "Triage",
    "accept", "allowed_roots", "at_least", "cached_review", "cached_review_result", "check_repo", "choose_files", "collapse", "comment_body", "decide",
    "decisions", "decode_diff", "demo_git_repo", "diff_hash", "dismiss", "execute", "fingerprint", "get_sample",
    "git_refs", "github_review", "list_refs", "parse_diff", "plan", "recent_reviews", "repo_key", "review_async",
    "review_diff", "review_job_error", "review_job_result", "review_refs", "review_refs_async", "review_sample",
    "submit_review", "wait_for_review", "sample_prs", "sarif", "severity_rank", "specificity", "triage",
    "undo_decision", "verdict",
]
