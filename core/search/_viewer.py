"""Open a document inside Keel, under the same access rule as retrieval: the query that reads the document's
passages carries the Principal's prefilter, so a document the person may not see reads as not found (never
"forbidden", which would confirm it exists). Every opening is written to the audit log, like a search.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from core.auth import Principal
from core.errors import KeelError
from core.search import _registry
from core.search._access import access_filter, sql_literal
from core.search._index import get_table


class DocumentUnavailable(KeelError, LookupError):
    """No such document, or not one this person may read (the two are deliberately indistinguishable)."""


@dataclass(frozen=True)
class Passage:
    chunk_id: str
    index: int
    text: str


def passage_blocks(text: str) -> list[tuple[str, str | list[list[str]]]]:
    """A passage as ("text", str) and ("table", rows of cells) blocks, so the viewer shows an HTML table's rows
    (extracted as "a | b" lines, see core.search._corpus) or a Markdown table as a table, never as raw markup.
    A table is two or more consecutive lines with the same number (two or more) of "|"-separated cells."""
    blocks: list[tuple[str, str | list[list[str]]]] = []
    lines = text.split("\n")
    i = 0
    prose: list[str] = []

    def cells(line: str) -> list[str] | None:
        stripped = line.strip()
        if stripped.count("|") < 1:
            return None
        parts = [c.strip() for c in stripped.strip("|").split("|")]
        return parts if len(parts) >= 2 else None

    while i < len(lines):
        row = cells(lines[i])
        j = i
        rows: list[list[str]] = []
        while row is not None and j < len(lines) and (r := cells(lines[j])) is not None and len(r) == len(row):
            if not all(set(c) <= set("-: ") and c for c in r):  # a Markdown header rule, not a row
                rows.append(r)
            j += 1
        if len(rows) >= 2:
            if prose:
                blocks.append(("text", "\n".join(prose)))
                prose = []
            blocks.append(("table", rows))
            i = j
        else:
            prose.append(lines[i])
            i += 1
    if prose:
        blocks.append(("text", "\n".join(prose)))
    return blocks


@dataclass(frozen=True)
class DocumentView:
    doc_id: str
    title: str
    path: str
    clearance_level: int
    passages: tuple[Passage, ...]


def open_document(principal: Principal, doc_id: str, *, channel: str = "viewer") -> DocumentView:
    """The document's passages in order, if this principal's groups and clearance allow it."""
    if not isinstance(doc_id, str) or not doc_id or len(doc_id) > 1000:
        raise DocumentUnavailable("no such document")
    access = access_filter(principal)
    expression = f"doc_id = {sql_literal(doc_id)} AND {access.expression}"
    started = time.perf_counter()
    rows = (get_table().search().where(expression, prefilter=True)
            .select(["text", "chunk_id", "chunk_index", "title", "path", "access_groups", "clearance_level"])
            .limit(None).to_list())
    rows = [r for r in rows if access.allows(r["access_groups"], r["clearance_level"])]  # the same re-check
    if not rows or _registry.get_document(doc_id) is None:
        raise DocumentUnavailable("no such document, or not one you can access")
    rows.sort(key=lambda r: r["chunk_index"])
    _registry.record_audit(principal.sub, channel, f"open {doc_id}", expression, [doc_id],
                           [r["chunk_id"] for r in rows], (time.perf_counter() - started) * 1000)
    return DocumentView(doc_id=doc_id, title=rows[0]["title"], path=rows[0]["path"],
                        clearance_level=int(rows[0]["clearance_level"]),
                        passages=tuple(Passage(r["chunk_id"], int(r["chunk_index"]), r["text"]) for r in rows))
