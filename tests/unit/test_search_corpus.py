"""Reading documents: front matter and sidecars, default deny, bad files refused with the file named, chunking."""

from __future__ import annotations

import os

import pytest

from core.search._corpus import (
    CHUNK_CHARS,
    MAX_FILE_BYTES,
    DocumentRefused,
    chunk_text,
    html_to_text,
    parse_document,
    resolve_inside,
)
from core.search._pdfwrite import simple_pdf

META = "---\ntitle: Test doc\naccess_groups: [hr, all-staff]\nclearance_level: 2\n---\n"


def write(root, rel, data):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return rel


def test_markdown_with_front_matter(tmp_path):
    rel = write(tmp_path, "hr/a.md", META + "# Heading\n\nSome text about leave.\n")
    doc = parse_document(tmp_path, rel)
    assert (doc.doc_id, doc.title, doc.access_groups, doc.clearance_level, doc.kind) == \
        ("hr/a.md", "Test doc", ["all-staff", "hr"], 2, "markdown")
    assert doc.chunks[0].heading == "Heading" and "leave" in doc.chunks[0].text


def test_html_drops_scripts_and_keeps_text(tmp_path):
    rel = write(tmp_path, "a.html", META + "<h1>Benefits</h1><script>steal()</script><p>Gym &amp; pension</p>")
    doc = parse_document(tmp_path, rel)
    assert "steal" not in doc.body and "Gym & pension" in doc.body and doc.kind == "html"
    assert "x" in html_to_text("<style>.a{}</style>x")


def test_pdf_with_sidecar(tmp_path):
    write(tmp_path, "p.pdf", simple_pdf(["Whistle policy line one", "second line"]))
    write(tmp_path, "p.pdf.meta.yaml", "title: P\naccess_groups: [legal]\nclearance_level: 1\n")
    doc = parse_document(tmp_path, "p.pdf")
    assert doc.kind == "pdf" and "Whistle policy" in doc.body and doc.access_groups == ["legal"]


@pytest.mark.parametrize("content, reason", [
    ("no front matter at all", "no access metadata"),
    ("---\ntitle: x\n---\nbody", "missing access_groups, clearance_level"),
    ("---\ntitle: x\naccess_groups: []\nclearance_level: 1\n---\nbody", "non-empty list"),
    ("---\ntitle: x\naccess_groups: [\"hr' OR 1=1\"]\nclearance_level: 1\n---\nbody", "invalid group"),
    ("---\ntitle: x\naccess_groups: [hr]\nclearance_level: true\n---\nbody", "clearance_level"),
    ("---\ntitle: x\naccess_groups: [hr]\nclearance_level: 7\n---\nbody", "clearance_level"),
    ("---\ntitle: x\naccess_groups: [hr]\nclearance_level: '2'\n---\nbody", "clearance_level"),
    ("---\ntitle: [x\n---\nbody", "not valid YAML"),
    ("---\ntitle: x\naccess_groups: [hr]\nclearance_level: 1\nbody never closed", "not closed"),
    ("---\ntitle: x\naccess_groups: [hr]\nclearance_level: 1\n---\n   \n", "no text"),
    ("---\ntitle: x\naccess_groups: [hr]\nclearance_level: 1\nurl: javascript:alert(1)\n---\nbody", "url"),
])
def test_bad_metadata_is_refused_naming_the_file(tmp_path, content, reason):
    rel = write(tmp_path, "dir/bad.md", content)
    with pytest.raises(DocumentRefused, match=reason) as info:
        parse_document(tmp_path, rel)
    assert info.value.path == "dir/bad.md" and str(info.value).startswith("dir/bad.md:")


def test_binary_non_utf8_huge_and_malformed_pdf_are_refused(tmp_path):
    cases = {
        "bin.txt": b"\x00\x01\x02" * 100,
        "latin.txt": META.encode() + "caf\xe9".encode("latin-1"),
        "huge.md": META.encode() + b"a" * (MAX_FILE_BYTES + 1),
        "fake.pdf": b"not a pdf at all",
        "broken.pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\ngarbage",
        "nosidecar.pdf": simple_pdf(["text"]),
    }
    for name, data in cases.items():
        write(tmp_path, name, data)
    write(tmp_path, "fake.pdf.meta.yaml", "title: x\naccess_groups: [hr]\nclearance_level: 1\n")
    write(tmp_path, "broken.pdf.meta.yaml", "title: x\naccess_groups: [hr]\nclearance_level: 1\n")
    reasons = {}
    for name in cases:
        with pytest.raises(DocumentRefused) as info:
            parse_document(tmp_path, name)
        reasons[name] = info.value.reason
    assert "binary" in reasons["bin.txt"]
    assert "UTF-8" in reasons["latin.txt"]
    assert "larger than" in reasons["huge.md"]
    assert "not a PDF" in reasons["fake.pdf"]
    assert "PDF" in reasons["broken.pdf"]
    assert "sidecar" in reasons["nosidecar.pdf"]


def test_path_traversal_and_escaping_symlinks_are_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.md").write_text(META + "outside")
    os.symlink(tmp_path / "secret.md", root / "link.md")
    for rel in ("../secret.md", "/etc/passwd", "a/../../secret.md", "link.md", ""):
        with pytest.raises(DocumentRefused):
            resolve_inside(root, rel)
    with pytest.raises(DocumentRefused, match="outside"):
        parse_document(root, "link.md")


def test_chunks_overlap_and_stay_near_the_size():
    body = "\n\n".join(f"Paragraph {i}. " + "word " * 60 for i in range(12))
    chunks = chunk_text("d", body)
    assert len(chunks) > 3
    assert all(len(c.text) <= CHUNK_CHARS + 200 for c in chunks)
    for a, b in zip(chunks, chunks[1:]):
        assert a.text[-40:].split()[-1] in b.text[:200]  # the next chunk starts with the previous one's tail
    assert [c.chunk_id for c in chunks[:2]] == ["d#0", "d#1"]
    long = chunk_text("d", "x" * 5000)
    assert all(len(c.text) <= CHUNK_CHARS + 200 for c in long) and "".join(c.text for c in long).count("x") >= 5000
