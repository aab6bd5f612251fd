"""Answers: retrieve under the principal's filter, re-check every source against the current registry, then stream
a cited answer through the gateway (feature search, tier capable). Not covered (best similarity under the
threshold) → say so without calling the model. Model failure → an extractive answer from the sources."""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.auth import Principal
from core.search import _registry
from core.search._retrieve import Retrieval, RetrievedChunk, retrieve

NOT_COVERED = ("The documents you have access to do not cover this question. Try other words, or ask the owner "
               "of the document you are looking for.")
MAX_SOURCE_CHARS = 600  # per chunk in the prompt: the embedded model reads 2,048 tokens in all


@dataclass(frozen=True)
class Source:
    n: int
    doc_id: str
    title: str
    path: str
    url: str | None
    clearance_level: int


@dataclass
class Answer:
    question: str
    text: str
    sources: list[Source]
    chunks: list[RetrievedChunk]  # everything put in front of the model
    citations: list[str]  # doc ids cited in the text, in order of first citation
    covered: bool
    used_llm: bool
    fallback_reason: str | None
    request_id: str | None
    audit_id: int | None
    filter_expr: str
    phrasings: list[str]
    best_similarity: float

    def as_dict(self) -> dict:
        return {
            "question": self.question, "answer": self.text, "covered": self.covered,
            "sources": [{"n": s.n, "doc_id": s.doc_id, "title": s.title, "path": s.path, "url": s.url,
                         "clearance_level": s.clearance_level} for s in self.sources],
            "chunks": [{"doc_id": c.doc_id, "chunk_id": c.chunk_id, "text": c.text, "score": c.score,
                        "similarity": c.similarity} for c in self.chunks],
            "citations": self.citations, "used_llm": self.used_llm, "fallback_reason": self.fallback_reason,
            "request_id": self.request_id, "audit_id": self.audit_id, "filter": self.filter_expr,
            "phrasings": self.phrasings, "best_similarity": self.best_similarity,
        }


def recheck(retrieval: Retrieval) -> list[RetrievedChunk]:
    """Chunks whose document still exists and still admits the principal, per the registry right now (access may
    have changed since the index was read)."""
    current = _registry.documents_by_id(c.doc_id for c in retrieval.chunks)
    kept = []
    for c in retrieval.chunks:
        info = current.get(c.doc_id)
        if info is not None and retrieval.access.allows(info.access_groups, info.clearance_level) \
                and retrieval.access.allows(c.access_groups, c.clearance_level):
            kept.append(c)
    return kept


def number_sources(chunks: list[RetrievedChunk]) -> list[Source]:
    sources: dict[str, Source] = {}
    for c in chunks:
        if c.doc_id not in sources:
            sources[c.doc_id] = Source(len(sources) + 1, c.doc_id, c.title, c.path, c.url, c.clearance_level)
    return list(sources.values())


def cited_numbers(text: str, count: int) -> list[int]:
    seen: list[int] = []
    for m in re.finditer(r"\[(\d{1,2})(?:\s*,\s*(\d{1,2}))*\]", text):
        for n in re.findall(r"\d{1,2}", m.group(0)):
            n = int(n)
            if 1 <= n <= count and n not in seen:
                seen.append(n)
    return seen


_QUANTITY_CUE = re.compile(r"\b(how (much|many|long|often)|salar|band|range|cost|price|budget|rate|limit|"
                           r"amount|number|when|date|deadline|days?|hours?|per diem|allowance|percent|%)", re.IGNORECASE)


def _stems(words) -> set[str]:
    """Five-letter prefixes of the content words: "engineers" meets "Engineering", "bands" meets "band"."""
    return {w[:5] for w in words if len(w) > 2 and w not in _STOP}


def extractive_answer(question_words: set[str], chunks: list[RetrievedChunk], sources: list[Source],
                      question: str = "") -> str:
    """The sentences that share most words with the question, each cited: honest when no model is available.
    When the question asks for an amount, a range or a date, sentences with figures rank first among equals, and
    short figure-bearing lines (table rows) count, so the numbers asked for are not dropped."""
    number = {s.doc_id: s.n for s in sources}
    wanted = _stems(question_words)
    wants_figures = bool(_QUANTITY_CUE.search(question or " ".join(sorted(question_words))))
    scored = []
    for order, c in enumerate(chunks):
        for sentence in re.split(r"(?<=[.!?])\s+|\n+", c.text):
            sentence = sentence.strip(" -*#|")
            has_figure = bool(re.search(r"\d", sentence))
            if len(sentence) < (10 if has_figure else 25):
                continue
            overlap = len(_stems(re.findall(r"[a-z0-9]+", sentence.lower())) & wanted)
            bonus = 1 if wants_figures and has_figure and overlap else 0
            scored.append((overlap + bonus, -order, sentence, number[c.doc_id]))
    best = sorted(scored, key=lambda x: (-x[0], -x[1]))[:3]
    if not best:
        return "See the sources below."
    return " ".join(f"{s} [{n}]" for _, _, s, n in best)


_STOP = {"the", "a", "an", "of", "to", "is", "are", "what", "how", "do", "does", "for", "in", "on", "and", "or",
         "i", "my", "we", "our", "can", "when", "who", "which", "with", "at", "be", "it", "this", "that", "by", "as",
         "from", "into", "per", "up", "you", "your", "they", "their", "will", "was", "were", "has", "have", "not",
         "answer", "sources", "source", "question", "documents", "document"}
GROUNDED_SHARE = 0.6  # a sentence is supported when this share of its content words occur in one source


def _content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9][a-z0-9.,'-]*[a-z0-9]|[a-z0-9]", text.lower()) if w not in _STOP}


def ground(text: str, chunks: list[RetrievedChunk], sources: list[Source]) -> tuple[str | None, str | None]:
    """Check a model answer against the sources in code, not by the model's say-so: every sentence must share most
    of its content words with one source, and every number in it must occur in that source. Sentences without a
    citation get the supporting source's number. Every answer is checked, sentence by sentence: a sentence that
    only says the sources do not cover something is the one kind kept without support (no figures, no "but …"),
    so "…do not cover this. The CEO earns 310,000 euros" fails on its second sentence. Returns (checked text,
    None) or (None, why it failed)."""
    per_source: dict[int, str] = {}
    number = {s.doc_id: s.n for s in sources}
    for c in chunks:
        per_source[number[c.doc_id]] = per_source.get(number[c.doc_id], "") + " " + c.title + " " + c.text
    words_of = {n: _content_words(t) for n, t in per_source.items()}
    out: list[str] = []
    for sentence in re.split(r"(?<=[.!?])\s+|\n+", text.strip()):
        sentence = sentence.strip()
        bare = re.sub(r"\[\d{1,2}(?:\s*,\s*\d{1,2})*\]", "", sentence).strip()
        words = _content_words(bare)
        if not words:
            continue
        if _only_abstains(bare, words):
            out.append(sentence)
            continue
        cited = [n for n in cited_numbers(sentence, len(sources))]
        candidates = cited or list(words_of)
        best = max(candidates, key=lambda n: len(words & words_of[n]))
        share = len(words & words_of[best]) / len(words)
        figures = set(re.findall(r"\d+(?:[.,]\d+)*", bare))
        missing = {f for f in figures if f not in per_source[best]}
        if share < GROUNDED_SHARE or missing:
            why = f"numbers {sorted(missing)} are not in the sources" if missing else "it says things the sources do not"
            return None, f"the model's answer was not supported by the sources ({why})"
        out.append(sentence if cited else f"{sentence.rstrip()} [{best}]")
    if not out:
        return None, "the model's answer was empty"
    return " ".join(out), None


_ABSTAIN = re.compile(r"\b(do(es)? not|don't|doesn't|do not) (cover|mention|say|include|contain)|\bnot (covered|"
                      r"mentioned|included)|\bno information\b", re.IGNORECASE)
_CONTRAST = re.compile(r"\b(but|however|although|though|yet|except|whereas|while|instead|still|nevertheless)\b|[;:]",
                       re.IGNORECASE)
_ABSTAIN_WORDS = {"cover", "covers", "covered", "mention", "mentions", "mentioned", "say", "says", "include",
                  "includes", "included", "contain", "contains", "don't", "doesn't", "information", "provided",
                  "given", "context", "access", "unfortunately", "sorry", "any", "about", "specific", "no", "so",
                  "cannot", "can't", "answer", "here", "there", "topic", "subject", "detail", "details", "i'm"}
MAX_ABSTAIN_TOPIC_WORDS = 4


def _only_abstains(sentence: str, words: set[str]) -> bool:
    """A sentence that says the sources do not cover something and claims nothing else: no figures, no contrast
    clause, and only a few topic words besides the abstention itself."""
    if not _ABSTAIN.search(sentence) or _CONTRAST.search(sentence) or re.search(r"\d", sentence):
        return False
    return len(words - _ABSTAIN_WORDS) <= MAX_ABSTAIN_TOPIC_WORDS


def _source_block(chunks: list[RetrievedChunk], sources: list[Source]) -> str:
    number = {s.doc_id: s.n for s in sources}
    parts = []
    for c in chunks:
        text = c.text if len(c.text) <= MAX_SOURCE_CHARS else c.text[:MAX_SOURCE_CHARS].rsplit(" ", 1)[0] + " …"
        parts.append(f"[{number[c.doc_id]}] {c.title}\n{text}")
    return "\n\n".join(parts)


_QUESTION_FILLER = _STOP | {"much", "many", "next", "there", "any", "get", "need", "should", "would", "could",
                              "about", "policy", "policies", "company", "keel", "us", "me", "handle", "long", "often", "use", "give",
                              "run", "runs", "pay", "come", "back"}


_IDENTIFIER = re.compile(r"^(?=.*[a-z])(?=.*\d)[a-z0-9]+$")  # SEV1, E4, Q3: letters and digits together


def _key_stems(text: str) -> set[str]:
    """Four-letter prefixes of a question's content words ("engineers" meets "Engineering", "color" meets
    "colour"); words with a digit ("SEV1", "E4") are kept whole, since they name one thing exactly."""
    words = [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _QUESTION_FILLER and not w.isdigit()]
    return {w if _IDENTIFIER.match(w) else w[:4] for w in words if len(w) > 2 or _IDENTIFIER.match(w)}


STRONG_MATCH = 0.5  # at or above this similarity the passage is trusted to be about the question without the word check


def lexically_covered(phrasings: list[str], chunks: list[RetrievedChunk], *, top: int = 3) -> bool:
    """Whether the best passages talk about what the question names: for the question or one of its phrasings,
    every identifier (letters with digits) and at least half of the content words occur in the top passages.
    Embedding similarity alone lets "How do we handle a SEV1 incident?" match a software-request page."""
    if not chunks:
        return False
    text = " ".join(f"{c.title} {c.text}" for c in chunks[:top]).lower()
    present = {w if _IDENTIFIER.match(w) else w[:4] for w in re.findall(r"[a-z0-9]+", text)}
    for phrasing in phrasings:
        wanted = _key_stems(phrasing)
        if not wanted:
            return True  # nothing specific to check
        ids = {w for w in wanted if _IDENTIFIER.match(w)}
        if ids - present:
            continue
        if len(wanted & present) * 2 >= len(wanted):
            return True
    return False


class AnswerRun:
    """Iterate for the answer's text as it streams; `answer` is set once iteration ends. `retrieval`, `sources`
    and `chunks` are known before the first piece, so a UI can show the sources while the answer streams."""

    def __init__(self, principal: Principal, question: str, *, k: int = 5, channel: str = "ui",
                 use_llm: bool = True, use_llm_expansion: bool | None = None, max_tokens: int | None = None):
        self.principal = principal
        self.retrieval = retrieve(principal, question, k=k, channel=channel, use_llm_expansion=use_llm_expansion)
        self.chunks = recheck(self.retrieval) if self.retrieval.covered else []
        self.sources = number_sources(self.chunks)
        self.covered = self.retrieval.covered and bool(self.chunks) and (
            self.retrieval.best_similarity >= STRONG_MATCH or lexically_covered(self.retrieval.phrasings, self.chunks))
        self.use_llm = use_llm
        self.max_tokens = max_tokens
        self.answer: Answer | None = None
        self.replaced = False  # the streamed text was replaced after the fact (citations added, or a fallback)
        self.draft = ""  # the model's text when the check or a failure replaced it, so a UI can show both
        self._stream = None

    def cancel(self) -> None:
        if self._stream is not None:
            self._stream.cancel()

    def __iter__(self):
        from core.llm import LLMError, LLMRequest, get_gateway
        from core.prompts import load

        text, used_llm, reason, request_id = "", False, None, None
        if not self.covered:
            text = NOT_COVERED
            yield text
        elif not self.use_llm:
            reason = "answer generation switched off"
            text = extractive_answer(_words(self.retrieval.query), self.chunks, self.sources, self.retrieval.query)
            yield text
        else:
            prompt = load("search/answer")
            overrides = {"max_tokens": min(self.max_tokens, prompt.max_tokens)} if self.max_tokens else {}
            request = LLMRequest.from_prompt(
                prompt, {"sources": _source_block(self.chunks, self.sources), "question": self.retrieval.query},
                feature="search", task="answer", user=self.principal.sub, **overrides)
            try:
                self._stream = get_gateway().stream(request)
                request_id = self._stream.request_id
                for piece in self._stream:
                    if piece.reset:
                        text = ""
                        continue
                    text += piece.text
                    yield piece.text
                used_llm = True
                if not text.strip():
                    raise LLMError("the model returned an empty answer", request_id=request_id)
                checked, why = ground(text, self.chunks, self.sources)
                if checked is None:
                    self.draft = text
                    reason = f"{why}; showing the most relevant sentences from the sources instead"
                    text, used_llm = extractive_answer(_words(self.retrieval.query), self.chunks, self.sources, self.retrieval.query), False
                    self.replaced = True
                elif checked != text.strip():
                    text, self.replaced = checked, True
            except LLMError:  # the request log has the detail; a person reads what it means for them
                self.draft = text
                reason = ("the model did not finish its answer (it was busy or did not answer in time); showing the "
                          "most relevant sentences from the sources instead")
                fallback = extractive_answer(_words(self.retrieval.query), self.chunks, self.sources, self.retrieval.query)
                yield ("\n\n" if text else "") + fallback
                text, used_llm = fallback, False
                self.replaced = True
        cited = [self.sources[n - 1].doc_id for n in cited_numbers(text, len(self.sources))] if self.covered else []
        self.answer = Answer(
            question=self.retrieval.query, text=text.strip(), sources=self.sources, chunks=self.chunks,
            citations=cited, covered=self.covered, used_llm=used_llm, fallback_reason=reason,
            request_id=request_id, audit_id=self.retrieval.audit_id, filter_expr=self.retrieval.filter_expr,
            phrasings=self.retrieval.phrasings, best_similarity=self.retrieval.best_similarity)

    def result(self) -> Answer:
        for _ in self:
            pass
        if self.answer is None:  # a finished iteration always sets it; None would be a bug in __iter__
            raise RuntimeError("the answer run ended without an answer")
        return self.answer


def _words(text: str) -> set[str]:
    stop = {"the", "a", "an", "of", "to", "is", "are", "what", "how", "do", "does", "for", "in", "on", "and", "or",
            "i", "my", "we", "our", "can", "when", "who", "which", "with", "at", "be", "it"}
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in stop}


def ask(principal: Principal, question: str, **kwargs) -> AnswerRun:
    """Retrieve now (raises SearchInputError on a bad question) and return a run that streams the answer."""
    return AnswerRun(principal, question, **kwargs)
