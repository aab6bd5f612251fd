"""What can go wrong in a workspace call, each with a message a user can act on."""

from __future__ import annotations

from datetime import date

from core.errors import KeelError


class WorkspaceError(KeelError, ValueError):
    """Bad input to a workspace call (unknown task, empty selection, bad parameter…); nothing was spent."""


class UnknownTask(WorkspaceError):
    def __init__(self, task_id: object, valid: list[str]):
        super().__init__(f"unknown task {str(task_id)[:64]!r}; valid tasks: {', '.join(valid)}")
        self.valid = valid


class EmptySelection(WorkspaceError):
    """The selection (or page) holds no text: no LLM call is made and no credit is spent."""


class InvalidParam(WorkspaceError):
    """A task parameter is missing, unknown, too long or not on the task's allow-list."""


class SelectionTooLong(WorkspaceError):
    """The text is over the task's input budget and the task refuses rather than cutting it."""

    def __init__(self, message: str, *, chars: int, budget: int):
        super().__init__(message)
        self.chars = chars
        self.budget = budget


class DocumentNotFound(WorkspaceError, LookupError):
    pass


class DocumentConflict(WorkspaceError):
    """The document changed since the caller read it (someone else saved first)."""

    def __init__(self, message: str, *, current_version: int):
        super().__init__(message)
        self.current_version = current_version


class NotAMember(KeelError, PermissionError):
    """The caller is not a member of the workspace (or lacks the admin role the action needs)."""


class CreditsExhausted(KeelError, RuntimeError):
    """The workspace has used every AI response of its plan this month; raised before any LLM call."""

    def __init__(self, *, workspace_id: str, plan: str, limit: int, used: int, month: str, resets_on: date):
        self.workspace_id = workspace_id
        self.plan = plan
        self.limit = limit
        self.used = used
        self.month = month
        self.resets_on = resets_on
        super().__init__(
            f"Workspace {workspace_id!r} has used all {limit} AI responses of the {plan} plan for "
            f"{_month_name(month)}. Credits reset on {resets_on:%-d %B %Y} ({resets_on.isoformat()}, UTC); "
            "a paid plan has no monthly limit."
        )


def _month_name(month: str) -> str:
    year, number = month.split("-")
    return f"{date(int(year), int(number), 1):%B %Y}"
