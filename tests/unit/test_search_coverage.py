"""Issue 19 #5: search does not answer what its passages are not about, and the extractive fallback keeps the
figures a question asks for. Texts are the demo corpus's own sentences."""

from __future__ import annotations

from core.search._answer import _words, extractive_answer, lexically_covered, number_sources
from tests.unit.test_search_answer_units import chunk

SOFTWARE = ("To request new software, open a ticket in the IT portal. Licences are approved by your manager and "
            "installed by IT within two working days.")
SALARY = ("Engineering band E3 ranges from 68,000 to 84,000 euros; E4 from 82,000 to 101,000; E5 from 98,000 to "
          "122,000. Support band S2 ranges from 41,000 to 50,000 euros.\n\nOffers above the band midpoint need "
          "approval from the VP of People. Bands are reviewed each January against the Radford survey.")


def test_a_passage_that_never_names_the_incident_does_not_cover_a_sev1_question():
    chunks = [chunk("it/software", SOFTWARE)]
    assert not lexically_covered(["How do we handle a SEV1 incident?"], chunks)
    assert lexically_covered(["How do I request new software?"], chunks)


def test_a_phrasing_from_the_thesaurus_counts():
    chunks = [chunk("hr/pto", "PTO accrues at 2.08 days per month; up to five days carry forward.")]
    assert not lexically_covered(["What is the vacation allowance?"], chunks)
    assert lexically_covered(["What is the vacation allowance?", "What is the PTO allowance?"], chunks)


def test_the_extractive_fallback_keeps_the_salary_figures():
    chunks = [chunk("hr/salary-bands", SALARY)]
    question = "What are the salary bands for engineers?"
    text = extractive_answer(_words(question), chunks, number_sources(chunks), question)
    first = text.split(" [1]")[0]
    assert "68,000" in first and "84,000" in first, text
