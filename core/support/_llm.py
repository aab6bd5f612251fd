"""The support bot's LLM calls (all through the gateway, feature "support"): grounded FAQ answers, handoff
summaries and triage of unclear messages. Each has a non-LLM fallback, so a failing model never loses a reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.config import get_settings
from core.llm import LLMError, LLMRequest, get_gateway, looks_like_refusal
from core.prompts import load, remove_scaffolding
from core.support._classifier import Classification
from core.support._data import LABELS
from core.support._kb import MIN_SCORE, Passage

FEATURE = "support"
MAX_QUESTION_CHARS = 1000
MAX_TRANSCRIPT_CHARS = 1500  # the latest part; prompt processing dominates the small model's time
RUNNER_UP_WITHIN = 0.25
TRIAGE_SCHEMA = {"type": "object", "properties": {"intent": {"type": "string", "enum": list(LABELS)}},
                 "required": ["intent"], "additionalProperties": False}


@dataclass(frozen=True)
class Answer:
    text: str  # markdown: the answer, a quoted passage, and links
    sources: tuple[dict, ...]  # {"slug", "title", "link", "score"}
    model: str  # "provider/model" that wrote it, or "" when the excerpt fallback answered
    status: str  # llm | fallback | no_match
    error: str = ""


def _clean(text: str) -> str:
    text = remove_scaffolding(text).strip().strip('"').strip()
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text


_WORDS = re.compile(r"[a-z0-9]+")


def repeats_passage(answer: str, passage: str, *, n: int = 4, share: float = 0.6) -> bool:
    """Whether the answer is mostly a copy of the passage (most of its 4-word runs appear there): the passage is
    quoted below it anyway, so saying it twice only adds noise."""
    a, p = _WORDS.findall(answer.lower()), _WORDS.findall(passage.lower())
    if len(a) < n:
        return False
    grams = {tuple(p[i:i + n]) for i in range(len(p) - n + 1)}
    runs = [tuple(a[i:i + n]) for i in range(len(a) - n + 1)]
    return sum(r in grams for r in runs) >= share * len(runs)


def _quote(passage: str) -> str:
    return "\n".join(f"> {line}" if line.strip() else ">" for line in passage.splitlines())


def faq_answer(question: str, passages: list[Passage], *, user: str | None = None,
               customer: str | None = None) -> Answer:
    """A short answer grounded in the best passage, the passage quoted, and links to every relevant article."""
    # Links for the best article and any close runner-up; a distant third only adds noise.
    relevant = [p for p in passages if p.score >= MIN_SCORE and p.score >= passages[0].score - RUNNER_UP_WITHIN]
    if not relevant:
        return Answer("I couldn't find a help-centre article about that. Could you say it another way, or press "
                      "**Talk to a human**?", (), "", "no_match")
    top = relevant[0]
    sources = tuple({"slug": p.article.slug, "title": p.article.title, "link": p.article.link,
                     "score": round(p.score, 3)} for p in relevant)
    links = " · ".join(f"[{s['title']}]({s['link']})" for s in sources)
    tail = f"\n\n{_quote(top.text)}\n\nRead more: {links}"
    prompt = load("support/faq_answer")
    request = LLMRequest.from_prompt(
        prompt, {"title": top.article.title, "passage": top.text, "question": question[:MAX_QUESTION_CHARS]},
        feature=FEATURE, task="faq_answer", user=user, customer=customer)
    try:
        result = get_gateway().complete(request)
        text = _clean(result.text)
        if not text or looks_like_refusal(text):
            raise LLMError("the model gave no usable answer")
        if repeats_passage(text, top.text):
            text = f"Here is what our help centre says in **{top.article.title}**:"
        return Answer(text + tail, sources, f"{result.provider}/{result.model}", "llm")
    except LLMError as exc:
        return Answer(f"Here is what our help centre says in **{top.article.title}**:{tail}", sources, "",
                      "fallback", str(exc))


def llm_summary(transcript: str, *, user: str | None = None, customer: str | None = None) -> tuple[str, str]:
    """(summary, "provider/model"); raises LLMError when the model fails or says nothing useful."""
    prompt = load("support/handoff_summary")
    request = LLMRequest.from_prompt(prompt, {"transcript": transcript[-MAX_TRANSCRIPT_CHARS:]}, feature=FEATURE,
                                     task="handoff_summary", user=user, customer=customer)
    result = get_gateway().complete(request)
    text = _clean(result.text)
    if len(text) < 10 or looks_like_refusal(text):
        raise LLMError("the summary was empty or a refusal")
    return text[:600], f"{result.provider}/{result.model}"


def triage_enabled() -> bool:
    """Consult the LLM on unclear messages: `on`, or `auto` when the capable tier is not the embedded model."""
    settings = get_settings()
    mode = (settings.support_llm_triage or "auto").lower()
    if mode in ("on", "1", "true", "yes"):
        return True
    if mode != "auto":
        return False
    chain = settings.tiers.get("capable") or []
    return bool(chain) and not chain[0].startswith("embedded/")


def llm_triage(text: str, c: Classification, *, user: str | None = None) -> Classification:
    """Ask the capable tier for the intent; the classifier's answer stands if the call fails."""
    prompt = load("support/triage")
    request = LLMRequest.from_prompt(prompt, {"message": text[:MAX_QUESTION_CHARS]}, feature=FEATURE,
                                     task="triage", user=user, json_schema=TRIAGE_SCHEMA)
    try:
        result = get_gateway().complete(request)
        label = (result.json or {}).get("intent") if isinstance(result.json, dict) else None
    except LLMError:
        return c
    if label not in LABELS:
        return c
    return Classification(label=label, confidence=max(c.confidence, get_settings().support_confidence),
                          gap=max(c.gap, get_settings().support_ambiguity), second=c.label, scores=c.scores,
                          source="llm", note=f"classifier said {c.label} at {c.confidence:.2f}")
