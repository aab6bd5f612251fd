"""Every model answer is checked against the sources (issue 13, item 8): saying "the documents do not cover this"
no longer switches the check off for the rest of the answer."""

from __future__ import annotations

import pytest

from core.search._answer import ground, number_sources
from core.search._retrieve import RetrievedChunk


def chunk(doc, text, n=0):
    return RetrievedChunk(doc, f"{doc}#{n}", doc.title(), doc, None, text, ("all-staff",), 0, 0.1, 0.5)


CHUNKS = [chunk("nightjar", "Project Nightjar is the planned acquisition of Lumen Analytics for 42 million euros."),
          chunk("pto", "Up to 5 unused PTO days carry forward into the next calendar year.")]


@pytest.mark.parametrize("answer", [
    "The documents do not cover this. The CEO earns 310,000 euros a year.",
    "The sources do not cover the CEO's pay; it is 310,000 euros.",
    "This is not covered by the documents, but the CEO earns 310,000 euros.",
    "The documents don't cover salaries. Still, everyone knows the CEO earns 310,000 euros [1].",
    "Not covered in the sources. The CEO is paid a generous salary with a company car and a bonus [1].",
    "The documents do not cover the chief executive officer's salary, bonus, car, pension or shares.",
])
def test_an_abstention_does_not_wave_through_a_claim(answer):
    text, why = ground(answer, CHUNKS, number_sources(CHUNKS))
    assert text is None and "not supported" in why


@pytest.mark.parametrize("answer", [
    "The documents you have access to do not cover this question.",
    "The sources do not cover the CEO's salary.",
    "Sorry, this is not covered in the provided documents.",
])
def test_a_plain_abstention_is_still_accepted(answer):
    text, why = ground(answer, CHUNKS, number_sources(CHUNKS))
    assert why is None and text == answer


def test_an_abstention_next_to_a_supported_sentence_keeps_both():
    answer = "The documents do not cover the CEO's salary. Up to 5 unused PTO days carry forward [2]."
    text, why = ground(answer, CHUNKS, number_sources(CHUNKS))
    assert why is None and text == answer
