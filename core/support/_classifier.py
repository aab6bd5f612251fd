"""The cheap first tier: a softmax-regression head over sentence embeddings, trained from the labelled set.

The head is trained at first use from the train split and cached under the data directory, keyed by a hash
of the training file, the encoder and the head's own version, so editing the data set retrains it once.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.config import get_settings
from core.embeddings import ENCODER_NAME, embed
from core.support._data import INTENTS_FILE, LABELS, load_labelled_intents

HEAD_VERSION = "softmax-v1"
CLASSIFY_CHARS = 300  # intent lives in the opening sentences: a 50,000-character message costs what a short one does
_L2, _LEARNING_RATE, _EPOCHS = 1e-3, 5.0, 1000

# Frequent function words: enough to tell a Spanish, French, German, Italian or Portuguese message from English.
_FOREIGN_WORDS = frozenset("""el la los las de del mi mis está dónde donde pedido por para que qué como cómo quiero
tengo es un una le les est où mon ma mes je suis pas avec pour commande und ist mein meine wo nicht ich der die das
bestellung ein eine il di che non sono ho dove ordine não meu minha onde estou com uma""".split())
_ENGLISH_WORDS = frozenset("""the my is are to i you a an and how what where when can do does did it of in on for
with me please order this that have has not""".split())

_head: _Head | None = None
_head_lock = threading.Lock()


@dataclass(frozen=True)
class Classification:
    """An intent with its softmax probability and the gap to the runner-up (Rasa's ambiguity measure)."""

    label: str
    confidence: float
    gap: float
    second: str = ""
    scores: dict[str, float] = field(default_factory=dict)
    low_confidence: bool = False  # below the confidence threshold
    ambiguous: bool = False  # top-two gap below the ambiguity threshold
    source: str = "classifier"  # classifier | rule | llm
    note: str = ""  # why a rule decided, or what the text looked like ("empty", "no words", "not English")

    @property
    def uncertain(self) -> bool:
        return self.low_confidence or self.ambiguous

    def as_dict(self) -> dict:
        return {"label": self.label, "confidence": round(self.confidence, 4), "gap": round(self.gap, 4),
                "second": self.second, "low_confidence": self.low_confidence, "ambiguous": self.ambiguous,
                "source": self.source, "note": self.note}


@dataclass(frozen=True)
class _Head:
    weights: np.ndarray  # (dim, classes)
    bias: np.ndarray  # (classes,)
    labels: tuple[str, ...]
    digest: str

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        z = vectors @ self.weights + self.bias
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)


def training_digest(path: Path = INTENTS_FILE) -> str:
    h = hashlib.sha256(path.read_bytes())
    h.update(f"|{ENCODER_NAME}|{HEAD_VERSION}|{_L2}|{_LEARNING_RATE}|{_EPOCHS}".encode())
    return h.hexdigest()[:16]


def _cache_path(digest: str) -> Path:
    return get_settings().home / "support" / f"intent-head-{digest}.npz"


def train_head(vectors: np.ndarray, targets: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Full-batch gradient descent on L2-regularised cross-entropy: deterministic, ~0.3 s for 250 rows."""
    n, dim = vectors.shape
    weights = np.zeros((dim, classes), dtype=np.float64)
    bias = np.zeros(classes, dtype=np.float64)
    onehot = np.eye(classes)[targets]
    x = vectors.astype(np.float64)
    for _ in range(_EPOCHS):
        z = x @ weights + bias
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        grad = (p - onehot) / n
        weights -= _LEARNING_RATE * (x.T @ grad + _L2 * weights)
        bias -= _LEARNING_RATE * grad.sum(axis=0)
    return weights.astype(np.float32), bias.astype(np.float32)


def _load_or_train() -> _Head:
    digest = training_digest()
    path = _cache_path(digest)
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as data:
                labels = tuple(str(x) for x in data["labels"])
                if labels == LABELS:
                    return _Head(data["weights"], data["bias"], labels, digest)
        except (OSError, ValueError, KeyError):
            pass  # a torn or foreign file: train again and overwrite it
    rows = load_labelled_intents("train")
    vectors = embed([r.text for r in rows])
    targets = np.array([LABELS.index(r.label) for r in rows])
    weights, bias = train_head(vectors, targets, len(LABELS))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.npz")
    np.savez(tmp, weights=weights, bias=bias, labels=np.array(LABELS))
    os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the whole new one
    return _Head(weights, bias, LABELS, digest)


def get_head() -> _Head:
    """The trained head for the current training file (retrained if the file changed)."""
    global _head
    with _head_lock:
        if _head is None or _head.digest != training_digest():
            _head = _load_or_train()
        return _head


def reset_head() -> None:
    global _head
    with _head_lock:
        _head = None


def _text_shape(text: str) -> str:
    """'empty', 'no words' (emoji, punctuation), 'not English' (mostly non-Latin letters) or ''."""
    stripped = text.strip()
    if not stripped:
        return "empty"
    letters = [c for c in stripped[:2000] if c.isalpha()]
    if not letters and not any(c.isdigit() for c in stripped):
        return "no words"
    if letters:
        latin = sum(1 for c in letters if "LATIN" in unicodedata.name(c, ""))
        if latin / len(letters) < 0.5:
            return "not English"
        words = re.findall(r"[^\W\d_]+", stripped[:2000].lower())
        foreign = sum(1 for w in words if w in _FOREIGN_WORDS)
        english = sum(1 for w in words if w in _ENGLISH_WORDS)
        if foreign >= 2 and foreign > 2 * english:
            return "not English"
    return ""


def _decide(probabilities: np.ndarray, labels: tuple[str, ...], note: str) -> Classification:
    settings = get_settings()
    order = np.argsort(-probabilities)
    top, runner = int(order[0]), int(order[1])
    confidence = float(probabilities[top])
    gap = confidence - float(probabilities[runner])
    return Classification(
        label=labels[top], confidence=confidence, gap=gap, second=labels[runner],
        scores={label: float(p) for label, p in zip(labels, probabilities)},
        low_confidence=confidence < settings.support_confidence, ambiguous=gap < settings.support_ambiguity,
        note=note,
    )


def _rule(note: str) -> Classification:
    return Classification(label="UNKNOWN", confidence=0.0, gap=0.0, low_confidence=True, ambiguous=True,
                          source="rule", note=note)


def classify(text: str) -> Classification:
    """The intent of one customer message. Pure: no SQL, no LLM; empty or word-less text is UNKNOWN at 0."""
    if not isinstance(text, str):
        raise TypeError("classify() takes a str")
    note = _text_shape(text)
    if note in ("empty", "no words"):
        return _rule(note)
    head = get_head()
    return _decide(head.probabilities(embed([text.strip()[:CLASSIFY_CHARS]]))[0], head.labels, note)


def classify_many(texts: list[str]) -> list[Classification]:
    """Batch form of `classify` (one encoder pass), same results in the same order."""
    head = get_head()
    notes = [_text_shape(t) for t in texts]
    todo = [i for i, n in enumerate(notes) if n not in ("empty", "no words")]
    probabilities = head.probabilities(embed([texts[i].strip()[:CLASSIFY_CHARS] for i in todo])) if todo else None
    results: list[Classification] = [_rule(n) for n in notes]
    for row, i in enumerate(todo):
        results[i] = _decide(probabilities[row], head.labels, notes[i])
    return results


@dataclass(frozen=True)
class ClassReport:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class EvaluationReport:
    accuracy: float
    per_class: tuple[ClassReport, ...]
    confusion: dict[str, dict[str, int]]  # true label → predicted label → count
    mistakes: tuple[tuple[str, str, str, float], ...]  # (text, true, predicted, confidence)

    def format(self) -> str:
        lines = [f"{'intent':<16}{'precision':>10}{'recall':>10}{'f1':>8}{'n':>6}"]
        for c in self.per_class:
            lines.append(f"{c.label:<16}{c.precision:>10.3f}{c.recall:>10.3f}{c.f1:>8.3f}{c.support:>6}")
        lines.append(f"{'overall accuracy':<36}{self.accuracy:>8.3f}{sum(c.support for c in self.per_class):>6}")
        for text, true, predicted, confidence in self.mistakes:
            lines.append(f"  miss: {true} → {predicted} ({confidence:.2f}) {text!r}")
        return "\n".join(lines)


def evaluate(split: str = "test") -> EvaluationReport:
    """Accuracy and per-class precision/recall/F1 on a split of the labelled set."""
    rows = load_labelled_intents(split)
    predictions = classify_many([r.text for r in rows])
    confusion = {t: {p: 0 for p in LABELS} for t in LABELS}
    mistakes = []
    for row, pred in zip(rows, predictions):
        confusion[row.label][pred.label] += 1
        if pred.label != row.label:
            mistakes.append((row.text, row.label, pred.label, pred.confidence))
    per_class = []
    for label in LABELS:
        tp = confusion[label][label]
        predicted = sum(confusion[t][label] for t in LABELS)
        support = sum(confusion[label].values())
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class.append(ClassReport(label, precision, recall, f1, support))
    correct = sum(confusion[t][t] for t in LABELS)
    return EvaluationReport(correct / len(rows) if rows else 0.0, tuple(per_class), confusion, tuple(mistakes))
