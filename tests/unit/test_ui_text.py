"""ui/text.py: user-controlled text in markdown contexts shows literally; model markdown never loads an image."""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt

from ui.text import code, link, model_markdown, model_markdown_stream, plain

md = MarkdownIt("commonmark")
PIXEL = "http://127.0.0.1:9/pixel.gif"


@pytest.mark.parametrize("text", [
    f"![p]({PIXEL})", f"[![p]({PIXEL})](http://x)", f"![p][r]\n\n[r]: {PIXEL}", f"<img src='{PIXEL}'>",
    "**bold** _it_ `code` # head", ":red[x] $x^2$ ~~s~~", "a\nb\r\n===", "\\![p](u)",
])
def test_plain_text_renders_as_exactly_that_text(text):
    html = md.render(plain(text))
    assert "<img" not in html and "<a " not in html and "<strong" not in html and "<h" not in html[:3]
    assert html.startswith("<p>") and "<em" not in html and "<code" not in html


def test_links_only_for_http_urls_with_literal_text():
    assert link("Guide", "https://wiki.example.com/a(b) c") == "Guide"  # whitespace: no link
    out = link(f"![p]({PIXEL})", "https://wiki.example.com/a(b)")
    html = md.render(out)
    assert "<img" not in html and 'href="https://wiki.example.com/a%28b%29"' in html
    for url in ("javascript:alert(1)", "data:image/gif;base64,R0lG", "//evil.example/x", "", None, "file:///etc"):
        assert "<a " not in md.render(link("Title", url))


def test_code_spans_cannot_be_closed_from_inside():
    html = md.render(code("a`` <img src=x> `b"))
    assert "<img" not in html and html.count("<code>") == 1


def test_model_markdown_keeps_formatting_but_no_images():
    html = md.render(model_markdown(f"**Yes** [1]. See ![p]({PIXEL}) and \\![q]({PIXEL})"))
    assert "<strong>" in html and "<img" not in html
    streamed = "".join(model_markdown_stream(["look !", f"[p]({PIXEL}) done", "!"]))
    assert "<img" not in md.render(streamed) and streamed.endswith("done!")
