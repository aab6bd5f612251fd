"""Knowledge-base retrieval: paragraphs of every article embedded with the same encoder as the classifier.

An article's score is its best paragraph's cosine similarity to the question, so the answer can quote the
passage that matched rather than the article's first lines.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass

import numpy as np

from core.support._data import KB_DIR, Article, load_articles
from core.config import get_settings
from core.embeddings import DIMENSIONS, ENCODER_NAME, embed

MIN_SCORE = 0.30  # below this the best article is not about the question

_index: "_Index | None" = None
_lock = threading.Lock()


@dataclass(frozen=True)
class Passage:
    article: Article
    text: str
    score: float


@dataclass(frozen=True)
class _Index:
    digest: str
    vectors: np.ndarray
    owners: tuple[int, ...]  # article index per row
    paragraphs: tuple[str, ...]
    articles: tuple[Article, ...]


def _paragraphs(article: Article) -> list[str]:
    parts = [p.strip() for p in article.body.split("\n\n") if p.strip()]
    return parts or [article.body]


def _kb_digest(articles: tuple[Article, ...]) -> str:
    h = hashlib.sha256()
    for a in articles:
        h.update(f"{a.slug}\0{a.title}\0{a.body}\0".encode())
    return h.hexdigest()[:16]


def _cached_vectors(digest: str, texts: list[str]) -> np.ndarray:
    """Paragraph embeddings, cached under the data directory by the KB's content hash (a restart skips the work)."""
    path = get_settings().home / "support" / f"kb-{ENCODER_NAME}-{digest}.npy"
    if path.exists():
        try:
            vectors = np.load(path, allow_pickle=False)
            if vectors.shape == (len(texts), DIMENSIONS):
                return vectors
        except (OSError, ValueError):
            pass  # torn or foreign: embed again
    vectors = embed(texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.npy")
    np.save(tmp, vectors)
    os.replace(tmp, path)
    return vectors


def get_index() -> _Index:
    global _index
    articles = load_articles(KB_DIR)
    digest = _kb_digest(articles)
    with _lock:
        if _index is None or _index.digest != digest:
            owners, paragraphs = [], []
            for i, article in enumerate(articles):
                for para in _paragraphs(article):
                    owners.append(i)
                    paragraphs.append(para)
            vectors = _cached_vectors(digest, [f"{articles[o].title}. {p}" for o, p in zip(owners, paragraphs)])
            _index = _Index(digest, vectors, tuple(owners), tuple(paragraphs), articles)
        return _index


def search(question: str, k: int = 3) -> list[Passage]:
    """The best passage of each of the top `k` articles, best first (any score; callers apply MIN_SCORE)."""
    index = get_index()
    if not question.strip():
        return []
    scores = index.vectors @ embed([question.strip()])[0]
    best: dict[int, int] = {}
    for row in np.argsort(-scores):
        owner = index.owners[row]
        if owner not in best:
            best[owner] = int(row)
            if len(best) == k:
                break
    return [Passage(index.articles[o], index.paragraphs[r], float(scores[r])) for o, r in best.items()]
