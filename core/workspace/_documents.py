"""Documents in a workspace: text/markdown content in SQL, readable and writable by members only."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import col, update

from core import db
from core.auth import Principal
from core.tables import WorkspaceDocument, table_of
from core.workspace._access import require_member, user_sub
from core.workspace._errors import DocumentConflict, DocumentNotFound, WorkspaceError
from core.workspace._sql import clean_text, now

MAX_TITLE_CHARS = 200
MAX_CONTENT_CHARS = 1_000_000


@dataclass(frozen=True)
class Document:
    id: int
    workspace_id: str
    title: str
    content: str
    version: int
    created_by: str
    created_at: float
    updated_by: str
    updated_at: float


@dataclass(frozen=True)
class DocumentSummary:
    """A row of the document list (no content, so listing a big workspace stays cheap)."""

    id: int
    workspace_id: str
    title: str
    version: int
    updated_by: str
    updated_at: float


def _document(row: WorkspaceDocument) -> Document:
    if row.id is None:
        raise WorkspaceError("a document that was never saved has no id")
    return Document(row.id, row.workspace_id, row.title, row.content, row.version, row.created_by,
                    row.created_at, row.updated_by, row.updated_at)


def _title(title: str | None) -> str:
    title = " ".join(str(title or "").split())  # one line: newlines and tabs become spaces
    title = clean_text(title)
    if not title:
        raise WorkspaceError("a document needs a title")
    if len(title) > MAX_TITLE_CHARS:
        raise WorkspaceError(f"a title is at most {MAX_TITLE_CHARS} characters (got {len(title)})")
    return title


def _content(content: str | None) -> str:
    if content is None:
        return ""
    if not isinstance(content, str):
        raise WorkspaceError("document content must be text")
    if len(content) > MAX_CONTENT_CHARS:
        raise WorkspaceError(f"a document is at most {MAX_CONTENT_CHARS:,} characters (got {len(content):,})")
    return clean_text(content)


def list_documents(who: Principal | str, workspace_id: str) -> list[DocumentSummary]:
    """The workspace's documents, most recently edited first."""
    require_member(who, workspace_id)
    doc = table_of(WorkspaceDocument)  # Core columns: SQLModel's select() takes at most four
    with db.session() as s:
        rows = s.connection().execute(
            select(doc.c.id, doc.c.title, doc.c.version, doc.c.updated_by, doc.c.updated_at)
            .where(doc.c.workspace_id == workspace_id)
            .order_by(doc.c.updated_at.desc(), doc.c.id.desc())
        ).all()
    return [DocumentSummary(r[0], workspace_id, r[1], r[2], r[3], r[4]) for r in rows]


def create_document(who: Principal | str, workspace_id: str, title: str = "Untitled",
                    content: str = "") -> Document:
    require_member(who, workspace_id)
    sub, stamp = _actor(who), now()
    row = WorkspaceDocument(workspace_id=workspace_id, title=_title(title), content=_content(content), version=1,
                            created_by=sub, created_at=stamp, updated_by=sub, updated_at=stamp)
    with db.session() as s:
        s.add(row)
        s.flush()
        s.refresh(row)
        return _document(row)


def get_document(who: Principal | str, document_id: int) -> Document:
    row = _load(document_id)
    require_member(who, row.workspace_id)
    return _document(row)


def update_document(who: Principal | str, document_id: int, *, content: str | None = None,
                    title: str | None = None, expected_version: int | None = None) -> Document:
    """Save new content and/or title. With `expected_version`, refuse (DocumentConflict) if someone saved since."""
    if content is None and title is None:
        raise WorkspaceError("nothing to update: give content or a title")
    row = _load(document_id)
    require_member(who, row.workspace_id)
    values: dict = {"updated_by": _actor(who), "updated_at": now(), "version": WorkspaceDocument.version + 1}
    if content is not None:
        values["content"] = _content(content)
    if title is not None:
        values["title"] = _title(title)
    statement = update(WorkspaceDocument).where(col(WorkspaceDocument.id) == document_id).values(**values)
    if expected_version is not None:
        statement = statement.where(col(WorkspaceDocument.version) == expected_version)
    with db.session() as s:
        changed = s.exec(statement).rowcount
    if not changed:
        current = _load(document_id)
        raise DocumentConflict(
            f"document {document_id} was changed by {current.updated_by} (now version {current.version}, you "
            f"edited version {expected_version}); reload it and apply your change again",
            current_version=current.version,
        )
    return _document(_load(document_id))


def rename_document(who: Principal | str, document_id: int, title: str) -> Document:
    return update_document(who, document_id, title=title)


def delete_document(who: Principal | str, document_id: int) -> None:
    row = _load(document_id)
    require_member(who, row.workspace_id)
    with db.session() as s:
        obj = s.get(WorkspaceDocument, document_id)
        if obj is not None:
            s.delete(obj)


def _load(document_id: int) -> WorkspaceDocument:
    try:
        document_id = int(document_id)
    except (TypeError, ValueError):
        raise DocumentNotFound(f"no document {document_id!r}") from None
    if not 1 <= document_id < 2**31:
        raise DocumentNotFound(f"no document {document_id}")
    with db.session() as s:
        row = s.get(WorkspaceDocument, document_id)
    if row is None:
        raise DocumentNotFound(f"no document {document_id}")
    return row


def _actor(who: Principal | str) -> str:
    return user_sub(who)
