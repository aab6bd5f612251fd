"""Workspaces: members and roles, documents stored in SQL, the AI task catalogue and monthly credits.

`run_task` checks membership and input, reserves a credit atomically, then streams the task through the gateway.
"""

from core.workspace._access import (
    PLANS,
    ROLES,
    Member,
    WorkspaceInfo,
    add_member,
    ensure_member,
    get_workspace,
    list_members,
    personal_workspace_id,
    remove_member,
    require_member,
    role_in,
    set_plan,
    workspaces_for,
)
from core.workspace._credits import (
    FREE_MONTHLY_CREDITS,
    PLAN_LIMITS,
    CreditStatus,
    MemberUsage,
    Reservation,
    credit_status,
    month_key,
    refund_credit,
    release_stale_reservations,
    reserve_credit,
    resets_on,
    settle_credit,
    usage_by_member,
    utc_now,
)
from core.workspace._documents import (
    MAX_CONTENT_CHARS,
    Document,
    DocumentSummary,
    create_document,
    delete_document,
    get_document,
    list_documents,
    rename_document,
    update_document,
)
from core.workspace._errors import (
    CreditsExhausted,
    DocumentConflict,
    DocumentNotFound,
    EmptySelection,
    InvalidParam,
    NotAMember,
    SelectionTooLong,
    UnknownTask,
    WorkspaceError,
)
from core.workspace._run import TaskResult, TaskRun, clean_action_items, run_task, tidy_output
from core.workspace._tasks import (
    ACTION_ITEMS_SCHEMA,
    LANGUAGES,
    TASKS,
    TONES,
    Param,
    PreparedTask,
    Task,
    Truncation,
    get_task,
    list_tasks,
    prepare,
)

__all__ = [
    "ACTION_ITEMS_SCHEMA", "FREE_MONTHLY_CREDITS", "LANGUAGES", "MAX_CONTENT_CHARS", "PLANS", "PLAN_LIMITS",
    "ROLES", "TASKS", "TONES", "CreditStatus", "CreditsExhausted", "Document", "DocumentConflict",
    "DocumentNotFound", "DocumentSummary", "EmptySelection", "InvalidParam", "Member", "MemberUsage",
    "NotAMember", "Param", "PreparedTask", "Reservation", "SelectionTooLong", "Task", "TaskResult", "TaskRun",
    "Truncation", "UnknownTask", "WorkspaceError", "WorkspaceInfo", "add_member", "clean_action_items",
    "create_document", "credit_status", "delete_document", "ensure_member", "get_document", "get_task",
    "get_workspace", "list_documents", "list_members", "list_tasks", "month_key", "personal_workspace_id",
    "prepare", "refund_credit", "release_stale_reservations", "remove_member", "rename_document",
    "require_member", "reserve_credit", "resets_on", "role_in", "run_task", "set_plan", "settle_credit", "tidy_output",
    "update_document", "usage_by_member", "utc_now", "workspaces_for",
]
