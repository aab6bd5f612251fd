"""The knowledge base: enough articles, well-formed, and retrieval that finds the right one."""

from __future__ import annotations

import pytest

from core.support import get_article, load_articles, search_kb


def test_at_least_25_well_formed_articles():
    articles = load_articles()
    assert len(articles) >= 25
    assert len({a.slug for a in articles}) == len(articles)
    for a in articles:
        assert a.title and len(a.body) > 200 and a.tags
        assert a.link == f"/support_chat?article={a.slug}"
        assert len(a.excerpt()) <= 421
    assert get_article("return-policy").title == "Return policy"
    assert get_article("../../etc/passwd") is None


@pytest.mark.parametrize("question,slug", [
    ("How long does shipping take?", "shipping-times"),
    ("Can I send back a thermostat I already installed?", "return-policy"),
    ("I forgot my password", "password-reset"),
    ("What does Pro cost and what is in it?", "plans-compared"),
    ("my camera says offline", "camera-offline"),
    ("Do you ship to the UK?", "international-shipping"),
    ("How do I turn on 2FA?", "two-factor-authentication"),
    ("Does it work with Alexa?", "smart-assistants"),
    ("is my video encrypted", "privacy-and-data"),
    ("how do I factory reset the hub", "hub-wifi-and-reset"),
])
def test_retrieval_finds_the_article(keel_home, question, slug):
    hits = search_kb(question, k=3)
    assert hits[0].article.slug == slug, [(h.article.slug, round(h.score, 2)) for h in hits]
    assert hits[0].score >= 0.3 and hits[0].text in hits[0].article.body


def test_retrieval_of_nothing(keel_home):
    assert search_kb("   ") == []
    assert search_kb("xylophone quantum banana")[0].score < 0.3
