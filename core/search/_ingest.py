"""Incremental sync of a folder into the index: hash check first (unchanged files are only hashed), metadata-only
changes rewrite the access columns without re-embedding, changed documents are swapped atomically, documents
that vanished (or lost their access metadata) are removed. Progress with counts and an ETA goes to a callback.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.errors import KeelError
from core.search import _index, _registry
from core.search._corpus import (
    DocumentRefused,
    ParsedDocument,
    file_fingerprint,
    is_candidate,
    parse_document,
)

_sync_lock = threading.Lock()  # one sync at a time per process: two would race on the same documents


@dataclass
class SyncProgress:
    phase: str  # scanning | indexing | indexes | done
    done: int
    total: int
    elapsed_s: float
    eta_s: float | None
    indexed: int = 0
    unchanged: int = 0
    refused: int = 0
    current: str = ""


@dataclass
class IngestReport:
    root: str
    scanned: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    access_updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    deleted: list[str] = field(default_factory=list)
    refused: list[dict] = field(default_factory=list)  # {"path", "reason"}
    skipped: list[dict] = field(default_factory=list)  # files that are not documents: {"path", "reason"}
    chunks_written: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.refused

    def as_dict(self) -> dict:
        return asdict(self) | {"ok": self.ok}

    def summary(self) -> str:
        return (f"{self.scanned} files: {len(self.added)} added, {len(self.updated)} updated, "
                f"{len(self.access_updated)} access-only, {self.unchanged} unchanged, {len(self.deleted)} removed, "
                f"{len(self.refused)} refused; {self.chunks_written} chunks embedded in {self.seconds:.1f}s")


class IngestError(KeelError, ValueError):
    """The folder itself cannot be ingested (missing, not a folder, not allowed)."""


def scan(root: Path) -> tuple[list[str], list[dict]]:
    """Candidate documents (relative POSIX paths, sorted) and files that are not documents. Hidden entries are
    ignored; symlinked folders are not followed (a symlinked file is checked to stay inside root when read)."""
    docs, skipped = [], []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        base = os.path.relpath(dirpath, root).replace(os.sep, "/")
        prefix = "" if base == "." else base + "/"
        for name in sorted(filenames):
            rel = prefix + name
            if is_candidate(name):
                docs.append(rel)
            elif not name.startswith(".") and not name.lower().endswith(".meta.yaml"):
                skipped.append({"path": rel, "reason": "not a document type (md, markdown, txt, html, htm, pdf)"})
    return docs, skipped


def sync(root: str | Path, *, progress: Callable[[SyncProgress], None] | None = None,
         allowed_roots: list[Path] | None = None, delete_missing: bool = True) -> IngestReport:
    """Bring the index in line with the documents under `root`; returns what happened to each file."""
    root_path = Path(root).expanduser()
    if not root_path.exists():
        raise IngestError(f"folder {str(root)!r} does not exist")
    if not root_path.is_dir():
        raise IngestError(f"{str(root)!r} is not a folder")
    root_path = root_path.resolve()
    if allowed_roots is not None and not any(root_path == a.resolve() or a.resolve() in root_path.parents
                                             for a in allowed_roots):
        raise IngestError(f"{root_path} is outside the folders documents may be ingested from: "
                          + ", ".join(str(a) for a in allowed_roots))
    with _sync_lock:
        return _sync(root_path, progress, delete_missing)


def _sync(root: Path, progress, delete_missing: bool) -> IngestReport:
    from core.embeddings import embed

    started = time.monotonic()
    report = IngestReport(root=str(root))
    table = _index.get_table()
    known = _registry.sync_state(str(root))
    elsewhere = None  # doc ids indexed from other folders, loaded only if a new id appears
    paths, report.skipped = scan(root)
    report.scanned = len(paths)
    seen: set[str] = set()
    to_remove: list[str] = []
    embedded_chunks = 0

    def tell(phase: str, done: int, current: str = "") -> None:
        if progress is None:
            return
        elapsed = time.monotonic() - started
        remaining = len(paths) - done
        # Unchanged files cost a hash; changed ones cost embedding: estimate from the rate seen so far.
        eta = (elapsed / done * remaining) if done else None
        progress(SyncProgress(phase, done, len(paths), elapsed, eta, len(report.added) + len(report.updated),
                              report.unchanged, len(report.refused), current))

    tell("scanning", 0)
    last_tell = 0.0
    pending: list[ParsedDocument] = []  # new documents, embedded and added in batches

    def flush() -> None:
        nonlocal embedded_chunks
        if not pending:
            return
        texts = [t for doc in pending for t in embedding_texts(doc)]
        vectors = embed(texts)
        offset, batches = 0, []
        for doc in pending:
            batches.append(_index.rows_for(doc, vectors[offset:offset + len(doc.chunks)]))
            offset += len(doc.chunks)
        _index.add_rows(table, batches)  # one commit: the batch appears at once
        _registry.upsert_documents(str(root), [(doc, len(doc.chunks)) for doc in pending])
        embedded_chunks += len(texts)
        report.added.extend(doc.path for doc in pending)
        pending.clear()

    for i, rel in enumerate(paths):
        seen.add(rel)
        try:
            fingerprint = file_fingerprint(root, rel, walked=True)
            previous = known.get(rel)
            if previous is not None and previous.file_hash == fingerprint[0]:
                report.unchanged += 1
            else:
                doc = parse_document(root, rel, fingerprint)
                if previous is None:
                    if elsewhere is None:
                        elsewhere = {d for d, info in _registry.documents().items() if info.root != str(root)}
                    if doc.doc_id in elsewhere:
                        raise DocumentRefused(rel, "a document with this id is already indexed from another folder")
                    pending.append(doc)
                    if sum(len(d.chunks) for d in pending) >= 256:
                        flush()
                elif previous.content_hash == doc.content_hash:
                    _index.set_document_access(table, doc.doc_id, doc.access_groups, doc.clearance_level, doc.url,
                                               keep_url=False)
                    _registry.upsert_documents(str(root), [(doc, previous.chunks)])
                    report.access_updated.append(rel)
                else:
                    vectors = embed(embedding_texts(doc))
                    _index.replace_document(table, doc.doc_id, _index.rows_for(doc, vectors))
                    _registry.upsert_documents(str(root), [(doc, len(doc.chunks))])
                    embedded_chunks += len(doc.chunks)
                    report.updated.append(rel)
        except DocumentRefused as exc:
            report.refused.append({"path": exc.path, "reason": exc.reason})
            if rel in known:  # default deny: a document that lost its metadata (or broke) leaves the index
                to_remove.append(rel)
        except OSError as exc:
            report.refused.append({"path": rel, "reason": f"cannot be read: {exc.strerror or exc}"})
            if rel in known:
                to_remove.append(rel)
        now = time.monotonic()
        if now - last_tell > 0.25 or i + 1 == len(paths):
            tell("indexing", i + 1, rel)
            last_tell = now
    flush()
    if delete_missing:
        to_remove += [doc_id for doc_id in known if doc_id not in seen]
    for doc_id in to_remove:
        _index.delete_document(table, doc_id)
        report.deleted.append(doc_id)
    _registry.remove_documents(to_remove)
    report.chunks_written = embedded_chunks
    if report.added or report.updated or report.access_updated or report.deleted:
        tell("indexes", len(paths))
        _index.ensure_indexes(table)
    report.seconds = time.monotonic() - started
    tell("done", len(paths))
    return report


def embedding_texts(doc: ParsedDocument) -> list[str]:
    """What the encoder reads per chunk: the title and heading give a short chunk its context."""
    return [f"{doc.title}. {c.heading + '. ' if c.heading else ''}{c.text}" for c in doc.chunks]


def set_access(doc_id: str, groups, clearance_level, *, actor: str) -> int:
    """An admin changes a document's access: validated, applied to its chunks atomically (no re-embedding) and to
    the registry; kept until the file itself changes. Returns the chunk rows rewritten."""
    from core.auth import MAX_CLEARANCE
    from core.search._access import valid_group

    info = _registry.get_document(doc_id)
    if info is None:
        raise ValueError(f"no indexed document {doc_id!r}")
    if isinstance(groups, str):
        groups = [g.strip() for g in groups.split(",")]
    groups = sorted({g.strip().lower() for g in groups if g and g.strip()})
    if not groups:
        raise ValueError("a document needs at least one access group (all-staff for everyone)")
    bad = [g for g in groups if not valid_group(g)]
    if bad:
        raise ValueError(f"invalid group name(s) {bad}")
    if isinstance(clearance_level, bool) or not isinstance(clearance_level, int) or \
            not 0 <= clearance_level <= MAX_CLEARANCE:
        raise ValueError(f"clearance level must be an integer from 0 to {MAX_CLEARANCE}")
    with _sync_lock:
        rows = _index.set_document_access(_index.get_table(), doc_id, groups, clearance_level)
        _registry.set_registry_access(doc_id, groups, clearance_level)
    _registry.record_audit(actor, "admin", f"set access of {doc_id}",
                           f"access_groups={groups} clearance_level={clearance_level}", [doc_id], [], 0.0)
    return rows
