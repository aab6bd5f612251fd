"""Knowledge-base retrieval: paragraphs of every article, and the questions customers ask for it, embedded with
the same encoder as the classifier.

An article's score is its best row's cosine similarity to the question (a small encoder matches a question to a
question far better than to prose); the passage quoted is the article's best-matching paragraph, so the answer
quotes what matched rather than the article's first lines.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass

import numpy as np

from core.config import get_settings
from core.embeddings import DIMENSIONS, ENCODER_NAME, embed
from core.support._data import KB_DIR, Article, load_articles

MIN_SCORE = 0.30  # below this the best article is not about the question
MAX_QUESTION_CHARS = 1000

_index: _Index | None = None
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
    paragraphs: tuple[str, ...]  # the row's text: a paragraph, or a question when `is_question`
    is_question: tuple[bool, ...]
    articles: tuple[Article, ...]


def _paragraphs(article: Article) -> list[str]:
    parts = [p.strip() for p in article.body.split("\n\n") if p.strip()]
    return parts or [article.body]


def _kb_digest(articles: tuple[Article, ...]) -> str:
    h = hashlib.sha256()
    for a in articles:
        h.update(f"{a.slug}\0{a.title}\0{a.body}\0{chr(1).join(a.questions)}\0".encode())
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
            # One entry per paragraph or question: its article, the text shown, is it a question, the text embedded.
            owners: list[int] = []
            paragraphs: list[str] = []
            questions: list[bool] = []
            texts: list[str] = []
            for i, article in enumerate(articles):
                for para in _paragraphs(article):
                    owners.append(i)
                    paragraphs.append(para)
                    questions.append(False)
                    texts.append(f"{article.title}. {para}")
                for question in article.questions:
                    owners.append(i)
                    paragraphs.append(question)
                    questions.append(True)
                    texts.append(question)
            vectors = _cached_vectors(digest, texts)
            _index = _Index(digest, vectors, tuple(owners), tuple(paragraphs), tuple(questions), articles)
        return _index


def search(question: str, k: int = 3) -> list[Passage]:
    """The best passage of each of the top `k` articles, best first (any score; callers apply MIN_SCORE)."""
    index = get_index()
    if not question.strip():
        return []
    scores = index.vectors @ embed([question.strip()[:MAX_QUESTION_CHARS]])[0]
    best: dict[int, float] = {}  # article → its best score over paragraphs and questions
    passage: dict[int, int] = {}  # article → its best paragraph row
    for row in np.argsort(-scores):
        owner = index.owners[row]
        best.setdefault(owner, float(scores[row]))
        if not index.is_question[row]:
            passage.setdefault(owner, int(row))
    top = sorted(best, key=lambda o: -best[o])[:k]
    return [Passage(index.articles[o], index.paragraphs[passage[o]], best[o]) for o in top]
