"""Customer support: an embedding intent classifier, a side-effect-free router, tools over the demo company's
tables, grounded FAQ answers, human handoff with a package for the agent, and CSAT by segment.

The eval pipeline calls the pure functions `classify`, `plan_route` and `load_labelled_intents`.
"""

from core.embeddings import embed, get_encoder, is_loaded
from core.support._classifier import (
    Classification,
    EvaluationReport,
    classify,
    classify_many,
    evaluate,
    get_head,
    reset_head,
    training_digest,
)
from core.support._console import QueueItem, add_note, agent_reply, claim, escalate, improve_summary, queue, resolve
from core.support._csat import Overview, Segment, conversation_rows, filter_options, overview, segments
from core.support._data import LABELS, Article, LabelledMessage, get_article, load_articles, load_labelled_intents
from core.support._dialogue import (
    cancel_action,
    close_conversation,
    confirm_action,
    rate,
    request_human,
    send_message,
)
from core.support._errors import (
    AlreadyClaimed,
    ConversationClosed,
    ConversationNotFound,
    EmptyMessage,
    InvalidRating,
    MessageTooLong,
    NotAllowed,
    SupportError,
)
from core.support._eval import EVAL_SUITES, add_conversation_to_eval, eval_case_draft
from core.support._kb import search as search_kb
from core.support._records import (
    MAX_MESSAGE_CHARS,
    Conversation,
    Customer,
    Handoff,
    Message,
    clean_text,
    customer_conversation,
    get_conversation,
    get_handoff,
    latest_conversation,
    list_messages,
    new_conversation,
    open_conversation,
)
from core.support._router import (
    MUTATING_TOOLS,
    ROUTES,
    RouteDecision,
    SupportBranch,
    SupportRoute,
    asks_for_human,
    extract_entities,
    looks_like_injection,
    plan_route,
)
from core.support._seed import seed_demo_company
from core.support._tools import TOOL_ARGS, PolicyDecision, ToolError, ToolResult, check_policy, run_tool, validate_args


def warm_up() -> None:
    """Load the encoder, the classifier head and the knowledge-base index (seconds), e.g. in a background thread."""
    from core.support._kb import get_index

    get_head()
    get_index()


def customer_from_principal(principal) -> Customer:
    """Only a verified email links a sign-in to a support account (never an unverified claim, never the subject)."""
    email = (principal.email or "").strip().lower()
    if principal.email_verified:
        return Customer(sub=principal.sub, email=email, name=principal.display_name)
    return Customer(sub=principal.sub, email="", name=principal.display_name, unverified_email=email)


__all__ = [
    "EVAL_SUITES", "LABELS", "MAX_MESSAGE_CHARS", "MUTATING_TOOLS", "ROUTES", "TOOL_ARGS", "AlreadyClaimed", "Article",
    "Classification", "Conversation", "ConversationClosed", "ConversationNotFound", "Customer", "EmptyMessage",
    "EvaluationReport", "Handoff", "InvalidRating", "LabelledMessage", "Message", "MessageTooLong", "NotAllowed",
    "Overview", "PolicyDecision", "QueueItem", "RouteDecision", "Segment", "SupportBranch", "SupportError",
    "SupportRoute", "ToolError", "ToolResult", "add_conversation_to_eval", "add_note", "agent_reply", "asks_for_human",
    "cancel_action", "check_policy", "claim", "classify", "classify_many", "clean_text", "close_conversation",
    "confirm_action", "conversation_rows", "customer_conversation", "customer_from_principal", "embed", "escalate",
    "eval_case_draft", "evaluate", "extract_entities", "filter_options", "get_article", "get_conversation",
    "get_encoder", "get_handoff", "get_head", "improve_summary", "is_loaded", "latest_conversation", "list_messages",
    "load_articles", "load_labelled_intents", "looks_like_injection", "new_conversation", "open_conversation",
    "overview", "plan_route", "queue", "rate", "request_human", "reset_head", "resolve", "run_tool", "search_kb",
    "seed_demo_company", "segments", "send_message", "training_digest", "validate_args", "warm_up",
]
