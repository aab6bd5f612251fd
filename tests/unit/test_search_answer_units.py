"""Pure parts of answering and retrieval: citation parsing, source numbering, extractive fallback, input checks,
thesaurus phrasings."""

from __future__ import annotations

import pytest

from core.search._answer import cited_numbers, extractive_answer, number_sources
from core.search._retrieve import (
    MAX_QUERY_CHARS,
    RetrievedChunk,
    SearchInputError,
    clean_query,
    thesaurus_phrasings,
)


def chunk(doc, text, n=0):
    return RetrievedChunk(doc, f"{doc}#{n}", doc.title(), doc, None, text, ("all-staff",), 0, 0.1, 0.5)


def test_cited_numbers_in_order_and_in_range():
    assert cited_numbers("A [2] and [1, 3] and [9] and [2]", 3) == [2, 1, 3]
    assert cited_numbers("no citations", 3) == []


def test_sources_are_numbered_per_document():
    sources = number_sources([chunk("a", "x"), chunk("b", "y"), chunk("a", "z", 1)])
    assert [(s.n, s.doc_id) for s in sources] == [(1, "a"), (2, "b")]


def test_extractive_answer_cites_the_best_sentences():
    chunks = [chunk("a", "Unrelated sentence about the office kitchen rules. Payday is the 25th of each month."),
              chunk("b", "Expense claims are paid with the next salary run after approval.")]
    text = extractive_answer({"payday", "month"}, chunks, number_sources(chunks))
    assert text.startswith("Payday is the 25th of each month. [1]")


@pytest.mark.parametrize("bad", ["", "   \n\t ", "x" * (MAX_QUERY_CHARS + 1), "a" * 50_000, None, 42])
def test_bad_questions_get_a_clear_error(bad):
    with pytest.raises(SearchInputError):
        clean_query(bad)


def test_clean_query_strips_control_characters():
    assert clean_query("  what\x00 is\x1b  pto? ") == "what is pto?"


def test_thesaurus_finds_pto_for_vacation():
    phrasings = thesaurus_phrasings("What is the vacation policy?")
    assert phrasings[0] == "what is the pto policy?"
    assert "paid time off" in phrasings[-1]
    assert thesaurus_phrasings("quarterly board agenda") == []


def test_grounding_accepts_supported_sentences_and_adds_citations():
    from core.search._answer import ground

    chunks = [chunk("nightjar", "Project Nightjar is the planned acquisition of Lumen Analytics for 42 million euros."),
              chunk("pto", "Up to 5 unused PTO days carry forward into the next calendar year.")]
    sources = number_sources(chunks)
    text, why = ground("Project Nightjar is the acquisition of Lumen Analytics for 42 million euros.", chunks, sources)
    assert why is None and text.endswith("[1]")
    text, why = ground("Up to 5 unused PTO days carry forward [2].", chunks, sources)
    assert text == "Up to 5 unused PTO days carry forward [2]."


@pytest.mark.parametrize("answer", [
    "Up to 7 unused PTO days carry forward [2].",  # a number the source does not have
    "The answer is: 1",
    "Payday is a legal term in the UK, and it is only allowed to payday in the UK.",
    "Lumen Analytics is bought for 42 million euros [2].",  # cites a source that does not say it
])
def test_grounding_rejects_unsupported_answers(answer):
    from core.search._answer import ground

    chunks = [chunk("nightjar", "Project Nightjar is the planned acquisition of Lumen Analytics for 42 million euros."),
              chunk("pto", "Up to 5 unused PTO days carry forward into the next calendar year.")]
    text, why = ground(answer, chunks, number_sources(chunks))
    assert text is None and "not supported" in why
