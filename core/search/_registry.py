"""SQL side of search: the document registry (hashes and access per document) and the retrieval audit log."""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass

from sqlmodel import col, delete, select

from core import db
from core.tables import SearchAudit, SearchDocument

MAX_AUDIT_QUERY_CHARS = 4000


@dataclass(frozen=True)
class DocumentInfo:
    doc_id: str
    root: str
    path: str
    title: str
    url: str | None
    kind: str
    access_groups: tuple[str, ...]
    clearance_level: int
    chunks: int
    size_bytes: int
    access_edited: bool
    indexed_at: float
    file_hash: str
    content_hash: str


def _info(row: SearchDocument) -> DocumentInfo:
    return DocumentInfo(row.doc_id, row.root, row.path, row.title, row.url, row.kind,
                        tuple(json.loads(row.access_groups or "[]")), row.clearance_level, row.chunks, row.size_bytes,
                        row.access_edited, row.indexed_at, row.file_hash, row.content_hash)


def documents(root: str | None = None) -> dict[str, DocumentInfo]:
    with db.session() as s:
        query = select(SearchDocument)
        if root is not None:
            query = query.where(SearchDocument.root == root)
        return {r.doc_id: _info(r) for r in s.exec(query).all()}


@dataclass(frozen=True)
class SyncState:
    file_hash: str
    content_hash: str
    chunks: int


def sync_state(root: str) -> dict[str, SyncState]:
    """Just what a sync compares, for every document of a folder (plain rows: 100k in about a second)."""
    with db.session() as s:
        rows = s.exec(select(SearchDocument.doc_id, SearchDocument.file_hash, SearchDocument.content_hash,
                             SearchDocument.chunks).where(SearchDocument.root == root)).all()
        return {r[0]: SyncState(r[1], r[2], r[3]) for r in rows}


def list_documents() -> list[DocumentInfo]:
    return sorted(documents().values(), key=lambda d: d.doc_id)


def get_document(doc_id: str) -> DocumentInfo | None:
    with db.session() as s:
        row = s.get(SearchDocument, doc_id)
        return _info(row) if row else None


def documents_by_id(doc_ids) -> dict[str, DocumentInfo]:
    ids = list(dict.fromkeys(doc_ids))
    if not ids:
        return {}
    with db.session() as s:
        rows = s.exec(select(SearchDocument).where(col(SearchDocument.doc_id).in_(ids))).all()
        return {r.doc_id: _info(r) for r in rows}


def upsert_documents(root: str, docs_and_chunks, *, access_edited: bool = False) -> None:
    """Insert or update registry rows for (parsed document, chunk count) pairs, in one transaction."""
    with db.session() as s:
        for doc, chunks in docs_and_chunks:
            row = s.get(SearchDocument, doc.doc_id) or SearchDocument(doc_id=doc.doc_id, root=root, path=doc.path,
                                                                      title=doc.title, kind=doc.kind, file_hash="",
                                                                      content_hash="")
            row.root, row.path, row.title, row.url, row.kind = root, doc.path, doc.title, doc.url, doc.kind
            row.access_groups = json.dumps(list(doc.access_groups))
            row.clearance_level = doc.clearance_level
            row.file_hash, row.content_hash = doc.file_hash, doc.content_hash
            row.chunks, row.size_bytes, row.indexed_at = chunks, doc.size_bytes, time.time()
            row.access_edited = access_edited
            s.add(row)


def set_registry_access(doc_id: str, groups: list[str], level: int) -> None:
    with db.session() as s:
        row = s.get(SearchDocument, doc_id)
        if row is not None:
            row.access_groups, row.clearance_level, row.access_edited = json.dumps(list(groups)), level, True
            s.add(row)


def remove_documents(doc_ids) -> None:
    ids = list(doc_ids)
    if ids:
        with db.session() as s:
            s.exec(delete(SearchDocument).where(col(SearchDocument.doc_id).in_(ids)))


# -- audit -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditEntry:
    id: int
    created_at: float
    user: str
    channel: str
    query: str
    filter_expr: str
    doc_ids: list[str]
    chunk_ids: list[str]
    results: int
    latency_ms: float


def _saved_id(row: SearchAudit) -> int:
    """The id of an audit row that is in the database (flushed or read back); only an unsaved row has none."""
    if row.id is None:
        raise ValueError("this search audit row has not been saved yet, so it has no id")
    return row.id


def record_audit(user: str, channel: str, query: str, filter_expr: str, doc_ids, chunk_ids,
                 latency_ms: float) -> int:
    with db.session() as s:
        row = SearchAudit(created_at=time.time(), user=(user or "?")[:255], channel=channel[:16],
                          query=query[:MAX_AUDIT_QUERY_CHARS], filter_expr=filter_expr,
                          doc_ids=json.dumps(list(doc_ids)), chunk_ids=json.dumps(list(chunk_ids)),
                          results=len(chunk_ids), latency_ms=round(latency_ms, 2))
        s.add(row)
        s.flush()
        return _saved_id(row)


def audit_log(*, user: str | None = None, channel: str | None = None, doc_id: str | None = None,
              text: str | None = None, since: float | None = None, until: float | None = None,
              limit: int = 1000) -> list[AuditEntry]:
    """Newest first. `doc_id` and `text` match inside the stored JSON / query (a plain LIKE, parameter-bound)."""
    with db.session() as s:
        query = select(SearchAudit).order_by(col(SearchAudit.created_at).desc(), col(SearchAudit.id).desc())
        if user:
            query = query.where(SearchAudit.user == user)
        if channel:
            query = query.where(SearchAudit.channel == channel)
        if since is not None:
            query = query.where(SearchAudit.created_at >= since)
        if until is not None:
            query = query.where(SearchAudit.created_at < until)
        if doc_id:
            query = query.where(col(SearchAudit.doc_ids).contains(json.dumps(doc_id)))
        if text:
            query = query.where(col(SearchAudit.query).contains(text))
        rows = s.exec(query.limit(max(1, min(int(limit), 100_000)))).all()
        return [AuditEntry(_saved_id(r), r.created_at, r.user, r.channel, r.query, r.filter_expr, json.loads(r.doc_ids),
                           json.loads(r.chunk_ids), r.results, r.latency_ms) for r in rows]


def audit_users() -> list[str]:
    with db.session() as s:
        return sorted(set(s.exec(select(SearchAudit.user).distinct()).all()))


def audit_csv(entries: list[AuditEntry]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "time_utc", "user", "channel", "query", "filter", "doc_ids", "chunk_ids", "results",
                     "latency_ms"])
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e.created_at))
        # A leading = + - @ makes spreadsheets run the cell as a formula: prefix a quote so it stays text.
        safe = (lambda v: "'" + v if v[:1] in ("=", "+", "-", "@") else v)
        writer.writerow([e.id, when, safe(e.user), e.channel, safe(e.query), e.filter_expr, " ".join(e.doc_ids),
                         " ".join(e.chunk_ids), e.results, e.latency_ms])
    return out.getvalue()
