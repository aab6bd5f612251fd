"""Errors of the review subsystem: each message says what was wrong and what to do about it."""

from core.errors import KeelError


class ReviewError(KeelError, ValueError):
    """A review cannot start or finish; the message is meant for the user."""


class DiffError(ReviewError):
    """The input is not a unified diff Keel can read (malformed, binary bytes, empty, too large)."""


class RepoNotAllowed(ReviewError):
    """The repository path is outside the allowed roots (KEEL_REVIEW_ROOTS) or is not a directory."""


class SandboxError(ReviewError):
    """A tool argument would leave the sandbox (path escape, shell metacharacters, option injection)."""
