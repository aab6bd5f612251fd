"""Incremental sync on SQLite and PostgreSQL: change, delete, re-permission and re-add documents while another
thread keeps querying; every read sees exactly one version of each document, and access follows the change."""

from __future__ import annotations

import threading
import time

import pytest

from core.search._pdfwrite import simple_pdf

pytestmark = pytest.mark.timeout(600)


def doc(title: str, groups: str, level: int, body: str) -> str:
    return f"---\ntitle: {title}\naccess_groups: [{groups}]\nclearance_level: {level}\n---\n{body}\n"


def long_body(marker: str, paragraphs: int) -> str:
    return "\n\n".join(f"{marker} paragraph {i}: the rotation schedule for the {marker} team " + "word " * 90
                       for i in range(paragraphs))


@pytest.fixture
def folder(tmp_path, database):
    from core.search import forget_tables

    forget_tables()
    root = tmp_path / "docs"
    root.mkdir()
    (root / "rota.md").write_text(doc("Rota", "engineering", 1, long_body("alpha", 6)))
    (root / "keep.md").write_text(doc("Keep", "all-staff", 0, "The canteen serves soup on Wednesdays."))
    (root / "gone.txt").write_text(doc("Gone", "all-staff", 0, "This memo about parking will be deleted."))
    (root / "handbook.pdf").write_bytes(simple_pdf(["Library opens at nine."]))
    (root / "handbook.pdf.meta.yaml").write_text("title: Handbook\naccess_groups: [all-staff]\nclearance_level: 0\n")
    yield root
    forget_tables()


def test_incremental_sync_with_concurrent_queries(folder):
    from core.search import _index, get_document, principal_for, retrieve, sync

    first = sync(folder)
    assert sorted(first.added) == ["gone.txt", "handbook.pdf", "keep.md", "rota.md"] and first.ok
    table = _index.get_table()
    alpha_chunks = get_document("rota.md").chunks
    assert alpha_chunks >= 3
    versions = {}  # content hash → chunk count, as each version is written
    versions[get_document("rota.md").content_hash] = alpha_chunks
    engineer = principal_for("test:eng", "engineering", 1)
    intern = principal_for("test:intern", "", 0)
    problems: list[str] = []
    reads = {"n": 0}
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            rows = _index.document_rows(table, "rota.md").to_pylist()
            hashes = {r["content_hash"] for r in rows}
            if len(hashes) > 1:
                problems.append(f"saw two versions at once: {hashes}")
            if rows and versions.get(rows[0]["content_hash"], len(rows)) != len(rows):
                problems.append(f"partial version: {len(rows)} rows of {versions[rows[0]['content_hash']]}")
            if not rows and not state["deleted"]:
                problems.append("saw neither version")
            result = retrieve(engineer, "rotation schedule", channel="test", use_llm_expansion=False, audit=False)
            if result.rejected:
                problems.append("a row outside the prefilter")
            reads["n"] += 1

    state = {"deleted": False}
    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        time.sleep(0.5)
        # 1. change the content (fewer chunks): swapped atomically
        (folder / "rota.md").write_text(doc("Rota", "engineering", 1, long_body("beta", 3)))
        from core.search._corpus import parse_document

        versions[parse_document(folder, "rota.md").content_hash] = len(parse_document(folder, "rota.md").chunks)
        (folder / "gone.txt").unlink()
        report = sync(folder)
        assert report.updated == ["rota.md"] and report.deleted == ["gone.txt"] and report.unchanged == 2
        time.sleep(0.3)
        # 2. re-permission only: rows rewritten, nothing re-embedded
        (folder / "rota.md").write_text(doc("Rota", "all-staff", 0, long_body("beta", 3)))
        report = sync(folder)
        assert report.access_updated == ["rota.md"] and report.chunks_written == 0
        time.sleep(0.3)
        # 3. delete, then re-add with new content
        state["deleted"] = True
        (folder / "rota.md").unlink()
        assert sync(folder).deleted == ["rota.md"]
        assert get_document("rota.md") is None
        (folder / "rota.md").write_text(doc("Rota", "engineering", 2, long_body("gamma", 4)))
        versions[parse_document(folder, "rota.md").content_hash] = len(parse_document(folder, "rota.md").chunks)
        assert sync(folder).added == ["rota.md"]
        state["deleted"] = False
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not problems, problems[:5]
    assert reads["n"] >= 5

    # the final state: gamma, engineering, clearance 2
    rows = _index.document_rows(table, "rota.md").to_pylist()
    assert rows and all("gamma" in r["text"] and r["access_groups"] == ["engineering"] for r in rows)
    assert all(r["clearance_level"] == 2 for r in rows)
    assert "rota.md" not in retrieve(engineer, "gamma rotation schedule", channel="test").doc_ids  # level 2 > 1
    assert "rota.md" in retrieve(principal_for("t", "engineering", 2), "gamma rotation schedule",
                                 channel="test").doc_ids
    assert "rota.md" not in retrieve(intern, "gamma rotation schedule", channel="test").doc_ids
    assert table.count_rows("doc_id = 'gone.txt'") == 0


def test_metadata_removed_means_removed_from_the_index(folder):
    from core.search import _index, get_document, sync

    sync(folder)
    (folder / "keep.md").write_text("The front matter was deleted by mistake.\n")
    report = sync(folder)
    assert report.refused[0]["path"] == "keep.md" and "no access metadata" in report.refused[0]["reason"]
    assert report.deleted == ["keep.md"] and get_document("keep.md") is None
    assert _index.get_table().count_rows("doc_id = 'keep.md'") == 0


def test_admin_access_edit_applies_at_once_and_is_audited(folder):
    from core.search import (
        audit_log,
        get_document,
        principal_for,
        retrieve,
        set_access,
        sync,
    )

    sync(folder)
    intern = principal_for("test:intern", "", 0)
    assert "keep.md" in retrieve(intern, "canteen soup Wednesdays", channel="test").doc_ids
    assert set_access("keep.md", ["hr"], 2, actor="ivan.admin@keel.dev") == 1
    assert "keep.md" not in retrieve(intern, "canteen soup Wednesdays", channel="test").doc_ids
    assert get_document("keep.md").access_groups == ("hr",) and get_document("keep.md").access_edited
    assert "keep.md" in retrieve(principal_for("h", "hr", 2), "canteen soup Wednesdays", channel="test").doc_ids
    edit = audit_log(user="ivan.admin@keel.dev")[0]
    assert edit.channel == "admin" and "['hr']" in edit.filter_expr
    assert sync(folder).unchanged == 4  # the file did not change: the admin's edit stands
    assert get_document("keep.md").access_groups == ("hr",)
    for bad in (([], 1), (["x' OR 1=1"], 1), (["hr"], 7), (["hr"], True)):
        with pytest.raises(ValueError):
            set_access("keep.md", *bad, actor="x")
    with pytest.raises(ValueError, match="no indexed document"):
        set_access("../etc/passwd", ["hr"], 1, actor="x")


def test_ingest_refuses_folders_outside_the_allowed_roots(folder, tmp_path):
    from core.search import IngestError, sync

    with pytest.raises(IngestError, match="outside the folders"):
        sync(folder, allowed_roots=[tmp_path / "elsewhere"])
    with pytest.raises(IngestError, match="does not exist"):
        sync(tmp_path / "missing")
    with pytest.raises(IngestError, match="not a folder"):
        sync(folder / "keep.md")


def test_audit_filters_and_csv_export_are_safe(database):
    from core.search import audit_csv, audit_log
    from core.search._registry import record_audit

    record_audit("a@keel.dev", "ui", "=HYPERLINK(\"http://evil\")", "f", ["hr/a.md"], ["hr/a.md#0"], 3.0)
    record_audit("b@keel.dev", "api", "'; DROP TABLE search_audit; --", "f", ["eng/b.md"], ["eng/b.md#1"], 4.0)
    assert [e.user for e in audit_log()] == ["b@keel.dev", "a@keel.dev"]
    assert [e.user for e in audit_log(doc_id="hr/a.md")] == ["a@keel.dev"]
    assert [e.user for e in audit_log(text="DROP TABLE")] == ["b@keel.dev"]
    assert [e.user for e in audit_log(channel="api")] == ["b@keel.dev"]
    assert audit_log(since=4_000_000_000) == []
    csv_text = audit_csv(audit_log())
    assert "'=HYPERLINK" in csv_text and "\n=HYPERLINK" not in csv_text.replace(",", "\n")
    assert csv_text.splitlines()[0].startswith("id,time_utc,user,channel,query,filter")
