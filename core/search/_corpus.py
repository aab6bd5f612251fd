"""Reading documents: Markdown, plain text and HTML with YAML front matter, PDF with a sidecar manifest.

Default deny: a file without complete access metadata (title, access_groups, clearance_level) is refused with a
message naming it. Binary, malformed, oversized and out-of-folder files are refused the same way, never guessed at.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import yaml

from core.auth import MAX_CLEARANCE
from core.errors import KeelError
from core.search._access import valid_group

TEXT_KINDS = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".html": "html", ".htm": "html"}
PDF_SUFFIX = ".pdf"
SIDECAR_SUFFIX = ".meta.yaml"  # handbook.pdf → handbook.pdf.meta.yaml
MAX_FILE_BYTES = 5_000_000
MAX_BODY_CHARS = 2_000_000
CHUNK_CHARS = 700
CHUNK_OVERLAP = 150
_DOC_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/ -]{0,254}$")
_META_KEYS = {"title", "access_groups", "clearance_level", "url", "department", "owner", "updated"}


class DocumentRefused(KeelError, ValueError):
    """A file cannot be indexed; `path` names it and the message says why."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    index: int
    text: str
    heading: str = ""


@dataclass
class ParsedDocument:
    doc_id: str
    path: str  # relative to the ingest folder, POSIX separators
    kind: str
    title: str
    access_groups: list[str]
    clearance_level: int
    body: str
    file_hash: str
    content_hash: str
    size_bytes: int
    url: str | None = None
    chunks: list[Chunk] = field(default_factory=list)

    @property
    def access_key(self) -> tuple:
        return (tuple(self.access_groups), self.clearance_level, self.url)


def is_candidate(name: str) -> bool:
    """A file the scanner treats as a document (sidecars and hidden files are not)."""
    low = name.lower()
    if name.startswith(".") or low.endswith(SIDECAR_SUFFIX):
        return False
    return Path(low).suffix in TEXT_KINDS or low.endswith(PDF_SUFFIX)


def resolve_inside(root: Path, relative: str) -> Path:
    """`root/relative`, refusing absolute paths, `..` and symlinks that lead outside root."""
    if not relative or relative.startswith(("/", "\\")) or "\x00" in relative:
        raise DocumentRefused(relative or "(empty path)", "not a relative path inside the ingest folder")
    parts = Path(relative).parts
    if ".." in parts:
        raise DocumentRefused(relative, "path traversal ('..') is not allowed")
    target = (root / relative).resolve()
    if target != root and root not in target.parents:
        raise DocumentRefused(relative, "the path (or a symlink on it) leads outside the ingest folder")
    return target


def file_fingerprint(root: Path, relative: str, *, walked: bool = False) -> tuple[str, int, bytes]:
    """(hash of the raw bytes plus any sidecar, size, raw bytes): the cheap check that decides 'unchanged'.

    `walked`: the path came from scanning root without following symlinks, so only a symlink at the file itself
    can lead outside; it is checked then (a plain lstat otherwise, which keeps a 100k-file re-sync fast)."""
    path = None
    if walked and ".." not in relative.split("/"):
        full = os.path.join(root, relative)
        info = os.lstat(full)
        if not stat.S_ISLNK(info.st_mode):
            path, mode, size = full, info.st_mode, info.st_size
    if path is None:
        resolved = resolve_inside(root, relative)
        if not resolved.exists():
            raise DocumentRefused(relative, "does not exist")
        info = resolved.stat()
        path, mode, size = str(resolved), info.st_mode, info.st_size
    if not stat.S_ISREG(mode):
        raise DocumentRefused(relative, "not a regular file")
    if size > MAX_FILE_BYTES:
        raise DocumentRefused(relative, f"{size:,} bytes is larger than the {MAX_FILE_BYTES:,}-byte limit")
    with open(path, "rb") as handle:
        raw = handle.read(MAX_FILE_BYTES + 1)
    digest = hashlib.sha256(raw)
    if relative.lower().endswith(PDF_SUFFIX):
        sidecar = Path(path).with_name(Path(path).name + SIDECAR_SUFFIX)
        if sidecar.is_file() and sidecar.stat().st_size <= 100_000:
            digest.update(b"\x00sidecar\x00" + sidecar.read_bytes())
    return digest.hexdigest(), len(raw), raw


def parse_document(root: Path, relative: str, fingerprint: tuple[str, int, bytes] | None = None) -> ParsedDocument:
    """Parse and validate one file; raises DocumentRefused with the reason."""
    relative = relative.replace(os.sep, "/")
    if not _DOC_ID.fullmatch(relative):
        raise DocumentRefused(relative, "the file name has characters a document id cannot hold "
                                        "(use letters, digits, space, '.', '_', '-', '/')")
    file_hash, size, raw = fingerprint or file_fingerprint(root, relative)
    suffix = Path(relative.lower()).suffix
    if suffix == PDF_SUFFIX:
        kind = "pdf"
        meta = _sidecar_meta(root, relative)
        body = _pdf_text(relative, raw)
    elif suffix in TEXT_KINDS:
        kind = TEXT_KINDS[suffix]
        text = _decode(relative, raw)
        meta, body = _front_matter(relative, text)
        if kind == "html":
            body = html_to_text(body)
    else:
        raise DocumentRefused(relative, f"unsupported file type {suffix or '(none)'}")
    title, groups, level, url = _validate_meta(relative, meta)
    body = _normalise(body)
    if not body.strip():
        raise DocumentRefused(relative, "the document has no text to index")
    if len(body) > MAX_BODY_CHARS:
        raise DocumentRefused(relative, f"the text is longer than {MAX_BODY_CHARS:,} characters")
    content_hash = hashlib.sha256(f"{title}\x00{body}".encode()).hexdigest()
    doc = ParsedDocument(doc_id=relative, path=relative, kind=kind, title=title, access_groups=groups,
                         clearance_level=level, body=body, file_hash=file_hash, content_hash=content_hash,
                         size_bytes=size, url=url)
    doc.chunks = chunk_text(relative, body, markdown=kind == "markdown")
    return doc


def _decode(relative: str, raw: bytes) -> str:
    if b"\x00" in raw[:8192]:
        raise DocumentRefused(relative, "looks binary (NUL bytes), not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentRefused(relative, f"is not UTF-8 text (bad byte at offset {exc.start})") from None


def _front_matter(relative: str, text: str) -> tuple[dict, str]:
    text = text.replace("\r\n", "\n")
    if not text.startswith("---\n"):
        raise DocumentRefused(relative, "no access metadata: add YAML front matter (---) with title, "
                                        "access_groups and clearance_level")
    end = text.find("\n---", 4)
    if end < 0:
        raise DocumentRefused(relative, "the front matter is not closed with ---")
    try:
        meta = yaml.safe_load(text[4:end])
    except yaml.YAMLError as exc:
        raise DocumentRefused(relative, f"the front matter is not valid YAML: {str(exc).splitlines()[0]}") from None
    body = text[end + 4:]
    return (meta if isinstance(meta, dict) else {}), body.lstrip("-").lstrip("\n")


def _sidecar_meta(root: Path, relative: str) -> dict:
    sidecar_rel = relative + SIDECAR_SUFFIX
    path = resolve_inside(root, sidecar_rel)
    if not path.is_file():
        raise DocumentRefused(relative, f"no access metadata: a PDF needs a sidecar manifest {Path(sidecar_rel).name}")
    if path.stat().st_size > 100_000:
        raise DocumentRefused(relative, "the sidecar manifest is larger than 100 KB")
    try:
        meta = yaml.safe_load(_decode(sidecar_rel, path.read_bytes()))
    except yaml.YAMLError as exc:
        raise DocumentRefused(relative, f"the sidecar manifest is not valid YAML: {str(exc).splitlines()[0]}") from None
    return meta if isinstance(meta, dict) else {}


def _validate_meta(relative: str, meta: dict) -> tuple[str, list[str], int, str | None]:
    missing = [k for k in ("title", "access_groups", "clearance_level") if k not in meta]
    if missing:
        raise DocumentRefused(relative, f"no access metadata: missing {', '.join(missing)}")
    title = meta["title"]
    if not isinstance(title, str) or not title.strip() or len(title) > 300:
        raise DocumentRefused(relative, "title must be a non-empty string of at most 300 characters")
    groups = meta["access_groups"]
    if isinstance(groups, str):
        groups = [groups]
    if not isinstance(groups, list) or not groups:
        raise DocumentRefused(relative, "access_groups must be a non-empty list of group names")
    bad = [g for g in groups if not valid_group(g)]
    if bad:
        raise DocumentRefused(relative, f"invalid group name(s) {bad!r} in access_groups")
    level = meta["clearance_level"]
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= MAX_CLEARANCE:
        raise DocumentRefused(relative, f"clearance_level must be an integer from 0 to {MAX_CLEARANCE}")
    url = meta.get("url")
    if url is not None and (not isinstance(url, str) or not re.match(r"^https?://[^\s\"'<>]{1,990}$", url)):
        raise DocumentRefused(relative, "url must be an http(s) address")
    return title.strip(), sorted(set(groups)), level, url


def _pdf_text(relative: str, raw: bytes) -> str:
    if not raw.startswith(b"%PDF-"):
        raise DocumentRefused(relative, "is not a PDF (no %PDF- header)")
    try:
        from pypdf import PdfReader

        reader = PdfReader(io.BytesIO(raw), strict=False)
        if reader.is_encrypted:
            raise DocumentRefused(relative, "the PDF is encrypted")
        if len(reader.pages) > 500:
            raise DocumentRefused(relative, "the PDF has more than 500 pages")
        return "\n\n".join((page.extract_text() or "") for page in reader.pages)
    except DocumentRefused:
        raise
    except Exception as exc:  # pypdf raises many kinds on malformed input
        raise DocumentRefused(relative, f"the PDF cannot be read: {type(exc).__name__}: {exc}") from exc


CELL_SEPARATOR = "|"  # between an HTML table row's cells in extracted text; the document viewer shows a table


class _TextExtractor(HTMLParser):
    _BLOCK = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section", "article", "table",
              "ul", "ol", "pre", "blockquote", "header", "footer"}
    _SKIP = {"script", "style", "template", "noscript", "head"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0
        self._cells = 0  # cells seen in the current table row
        self._tables = 0  # open <table> elements: whitespace between their rows is layout, not text

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in ("td", "th"):  # a row's cells stay on one line, apart: "Starter | 19 euros per seat"
            if self._cells:
                self.parts.append(f" {CELL_SEPARATOR} ")
            self._cells += 1
        elif tag == "tr":
            self._cells = 0
            self.parts.append("\n")
        elif tag in self._BLOCK:
            self._tables += tag == "table"
            self.parts.append("\n\n" if tag != "br" else "\n")

    def handle_endtag(self, tag):
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag == "tr":
            self._cells = 0  # the next row starts its own line
        elif tag in self._BLOCK:
            self._tables -= tag == "table" and self._tables > 0
            self.parts.append("\n\n")

    def handle_data(self, data):
        if not self._skipping and not (self._tables and not self._cells and not data.strip()):
            self.parts.append(data.replace("\n", " ") if self._cells else data)


def html_to_text(html: str) -> str:
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(c for c in text if c in "\n\t" or c >= " ")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def chunk_text(doc_id: str, body: str, *, markdown: bool = False, size: int = CHUNK_CHARS,
               overlap: int = CHUNK_OVERLAP) -> list[Chunk]:
    """Paragraph-aware chunks of about `size` characters; each starts with the last `overlap` characters of the
    previous one (cut at a word boundary), and remembers the Markdown heading it falls under."""
    pieces: list[tuple[str, str]] = []  # (heading, paragraph piece)
    heading = ""
    for para in body.split("\n\n"):
        para = para.strip()
        if not para:
            continue
        if markdown and para.startswith("#"):
            heading = para.partition("\n")[0].lstrip("#").strip()[:200]  # the heading stays in the text too
        while len(para) > size:
            cut = para.rfind(". ", 0, size)
            cut = cut + 1 if cut > size // 2 else (para.rfind(" ", 0, size) if para.rfind(" ", 0, size) > 0 else size)
            pieces.append((heading, para[:cut].strip()))
            para = para[cut:].strip()
        if para:
            pieces.append((heading, para))
    chunks: list[Chunk] = []
    current, current_heading = "", ""
    for head, piece in pieces:
        if current and len(current) + 2 + len(piece) > size:
            chunks.append(Chunk(f"{doc_id}#{len(chunks)}", len(chunks), current, current_heading))
            tail = current[-overlap:]
            space = tail.find(" ")
            current = (tail[space + 1:] if 0 <= space < len(tail) - 1 else tail) + "\n\n" + piece
            current_heading = head
        else:
            current = f"{current}\n\n{piece}" if current else piece
            current_heading = current_heading or head
    if current:
        chunks.append(Chunk(f"{doc_id}#{len(chunks)}", len(chunks), current, current_heading))
    return chunks
