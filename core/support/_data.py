"""The support data shipped in the repo: the labelled intents set and the knowledge-base articles."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from core.config import REPO_ROOT

DATA_DIR = REPO_ROOT / "data" / "support"
INTENTS_FILE = DATA_DIR / "intents.jsonl"
KB_DIR = DATA_DIR / "kb"
LABELS: tuple[str, ...] = ("FAQ", "ACCOUNT_ACTION", "BILLING", "COMPLAINT", "UNKNOWN")
SPLITS = ("train", "dev", "test")  # dev: the temperature when there is no calibration set; test: in-house score
# Written by another hand from short customer briefs, never used for training or tuning (see SOURCES.md):
# only the eval suite's "external" segment and `keel support eval-report` read it.
EXTERNAL_FILE = DATA_DIR / "external_test.jsonl"
# Written by a third hand, from briefs of its own: the classifier's temperature and uncertainty thresholds are
# fitted on it (confidence must mean the same on other people's phrasing), never its weights.
CALIBRATION_FILE = DATA_DIR / "calibration_external.jsonl"
# Eight more external sets, each by a fresh hand under the same rules, each written before the build it first scored
# (data/support/SOURCES.md tells which build and which choice each one judged).
EXTERNAL_2_FILE = DATA_DIR / "external_test_2.jsonl"
EXTERNAL_3_FILE = DATA_DIR / "external_test_3.jsonl"
EXTERNAL_4_FILE = DATA_DIR / "external_test_4.jsonl"
EXTERNAL_5_FILE = DATA_DIR / "external_test_5.jsonl"
EXTERNAL_6_FILE = DATA_DIR / "external_test_6.jsonl"
EXTERNAL_7_FILE = DATA_DIR / "external_test_7.jsonl"
EXTERNAL_8_FILE = DATA_DIR / "external_test_8.jsonl"
EXTERNAL_9_FILE = DATA_DIR / "external_test_9.jsonl"
# Test sets whose figures have been read for a decision: never trained on, but no longer blind. With the calibration
# set they are what the uncertainty thresholds are read off (2,500 messages instead of 400: a dozen wrong answers
# cannot tell one threshold from the next).
SCORED_EXTERNAL_SETS = {"external": EXTERNAL_FILE, "external-2": EXTERNAL_2_FILE, "external-3": EXTERNAL_3_FILE,
                        "external-4": EXTERNAL_4_FILE, "external-5": EXTERNAL_5_FILE, "external-6": EXTERNAL_6_FILE,
                        "external-7": EXTERNAL_7_FILE}
# Test sets no choice has been read from, by the name their report section and eval segment carry.
EXTERNAL_SETS = {"external-8": EXTERNAL_8_FILE, "external-9": EXTERNAL_9_FILE}


@dataclass(frozen=True)
class LabelledMessage:
    text: str
    label: str
    split: str
    kind: str = ""  # an off-topic line's kind where a set tags it (general-knowledge, small-talk, other-company…)


@dataclass(frozen=True)
class Article:
    slug: str
    title: str
    tags: tuple[str, ...]
    body: str
    questions: tuple[str, ...] = ()  # how customers ask for this article; indexed next to its paragraphs

    @property
    def link(self) -> str:
        """Where the article opens in the app (the Support chat page shows it)."""
        return f"/support_chat?article={self.slug}"

    def excerpt(self, max_chars: int = 420) -> str:
        """The opening paragraph(s), cut at a sentence end when possible."""
        text = " ".join(self.body.split())
        if len(text) <= max_chars:
            return text
        cut = text[:max_chars]
        end = cut.rfind(". ")
        return cut[: end + 1] if end > max_chars // 2 else cut.rstrip() + "…"


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def load_labelled_intents(split: str | None = None, path: Path = INTENTS_FILE) -> list[LabelledMessage]:
    """The labelled messages (all, or one split); a malformed line raises with its line number."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} or None, not {split!r}")
    rows: list[LabelledMessage] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            row = LabelledMessage(text=str(raw["text"]), label=str(raw["label"]), split=str(raw["split"]))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path.name} line {number}: not a {{text, label, split}} object ({exc})") from None
        if row.label not in LABELS or row.split not in SPLITS or not row.text.strip():
            raise ValueError(f"{path.name} line {number}: bad label/split/text {raw!r}")
        if split is None or row.split == split:
            rows.append(row)
    return rows


def load_external(path: Path = EXTERNAL_FILE, split: str = "external") -> list[LabelledMessage]:
    """An independently written set ([] if it is not there); each line {text|input, label|expected.label}."""
    if not path.is_file():
        return []
    rows: list[LabelledMessage] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            text = raw.get("text", raw.get("input"))
            label = raw.get("label") or (raw.get("expected") or {}).get("label") or raw.get("intent")
            kind = raw.get("kind", "")
        except (json.JSONDecodeError, AttributeError) as exc:
            raise ValueError(f"{path.name} line {number}: not a JSON object ({exc})") from None
        if not isinstance(text, str) or label not in LABELS:
            raise ValueError(f"{path.name} line {number}: needs a text and a label from {LABELS}")
        if not isinstance(kind, str):
            raise ValueError(f"{path.name} line {number}: kind must be a string")
        rows.append(LabelledMessage(text=text, label=str(label), split=split, kind=kind))
    return rows


@lru_cache(maxsize=4)
def load_articles(kb_dir: Path = KB_DIR) -> tuple[Article, ...]:
    """Every knowledge-base article (Markdown with a title/tags front matter), sorted by slug."""
    articles = []
    for path in sorted(kb_dir.glob("*.md")):
        raw = path.read_text(encoding="utf-8")
        if not raw.startswith("---\n") or "\n---\n" not in raw[4:]:
            raise ValueError(f"article {path.name}: missing front matter")
        head, body = raw[4:].split("\n---\n", 1)
        meta = yaml.safe_load(head) or {}
        articles.append(Article(slug=path.stem, title=str(meta["title"]), tags=tuple(meta.get("tags") or ()),
                                body=body.strip(), questions=tuple(str(q) for q in meta.get("questions") or ())))
    return tuple(articles)


def get_article(slug: str) -> Article | None:
    return next((a for a in load_articles() if a.slug == slug), None)
