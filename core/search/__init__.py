"""Document search: ingest files with access metadata into one LanceDB table, retrieve with an access prefilter
built only from the Principal (hybrid vectors + full text, query expansion, RRF), stream cited answers through the
gateway, and write every retrieval to an audit log.

`sync(folder)` indexes incrementally; `retrieve(principal, q)` returns chunks; `ask(principal, q)` streams an answer.
"""

from core.config import REPO_ROOT
from core.search._access import (
    AccessDenied,
    AccessFilter,
    access_filter,
    principal_for,
    valid_group,
)
from core.search._answer import NOT_COVERED, Answer, AnswerRun, Source, ask, recheck
from core.search._corpus import (
    MAX_FILE_BYTES,
    DocumentRefused,
    ParsedDocument,
    chunk_text,
    parse_document,
)
from core.search._eval import ForbiddenSourceRetrieved, eval_retrieve
from core.search._index import forget_tables, get_table
from core.search._ingest import (
    IngestError,
    IngestReport,
    SyncProgress,
    set_access,
    sync,
)
from core.search._jobs import SyncJob, current_sync, start_background_sync
from core.search._registry import (
    AuditEntry,
    DocumentInfo,
    audit_csv,
    audit_log,
    audit_users,
    get_document,
    list_documents,
)
from core.search._retrieve import (
    COVERAGE_THRESHOLD,
    MAX_QUERY_CHARS,
    Retrieval,
    RetrievedChunk,
    SearchInputError,
    clean_query,
    retrieve,
    thesaurus_phrasings,
)
from core.search._viewer import DocumentUnavailable, DocumentView, open_document, passage_blocks

DEMO_CORPUS = REPO_ROOT / "data" / "search" / "corpus"


def sync_demo_corpus(progress=None) -> IngestReport:
    """Index the demo corpus shipped in the repo (quick when nothing changed: a hash check per file)."""
    return sync(DEMO_CORPUS, progress=progress)


def ingest_roots() -> list:
    """Folders the admin page may ingest from: the demo corpus and `documents/` in the data directory."""
    from core.config import get_settings

    return [DEMO_CORPUS, get_settings().home / "documents"]


__all__ = [
    "COVERAGE_THRESHOLD",
    "DEMO_CORPUS",
    "MAX_FILE_BYTES",
    "MAX_QUERY_CHARS",
    "NOT_COVERED",
    "AccessDenied",
    "AccessFilter",
    "Answer",
    "AnswerRun",
    "AuditEntry",
    "DocumentInfo",
    "DocumentRefused",
    "DocumentUnavailable",
    "DocumentView",
    "ForbiddenSourceRetrieved",
    "IngestError",
    "IngestReport",
    "ParsedDocument",
    "Retrieval",
    "RetrievedChunk",
    "SearchInputError",
    "Source",
    "SyncJob",
    "SyncProgress",
    "access_filter",
    "ask",
    "audit_csv",
    "audit_log",
    "audit_users",
    "chunk_text",
    "clean_query",
    "current_sync",
    "eval_retrieve",
    "forget_tables",
    "get_document",
    "get_table",
    "ingest_roots",
    "list_documents",
    "open_document",
    "passage_blocks",
    "parse_document",
    "principal_for",
    "recheck",
    "retrieve",
    "set_access",
    "start_background_sync",
    "sync",
    "sync_demo_corpus",
    "thesaurus_phrasings",
    "valid_group",
]
