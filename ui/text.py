"""Text that people or models control, put into Streamlit's markdown contexts (st.markdown, st.write, captions,
alerts, expander and radio labels, titles) without it turning into markup.

Markdown there is live: `![p](http://host/pixel)` in a document title loads a remote image (a tracking pixel),
`[text](javascript:…)` or `:red[…]` restyle the page. Every page goes through these helpers instead of escaping
(or forgetting to) at each call site:

- `plain(text)`: shows the text literally (every ASCII punctuation character backslash-escaped, line breaks
  folded), for titles, names, paths, e-mail addresses, anything a person typed.
- `code(text)`: an inline code span whose fence no backtick in the text can close.
- `link(text, url)`: a link with literal text, only for http(s) URLs (the destination percent-encoded so it
  cannot end early); anything else is the plain text.
- `model_markdown(text)`: markdown a model or a person wrote on purpose (answers, explanations, messages):
  formatting stays, images become plain links that load nothing until clicked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from urllib.parse import quote, urlsplit

_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character CommonMark lets you escape
_BREAKS = re.compile(r"[\r\n\t\v\f\u2028\u2029]+")


def plain(text) -> str:
    """`text` exactly as typed, on one line: no images, links, emphasis, headings, directives or HTML."""
    return _PUNCTUATION.sub(r"\\\1", _BREAKS.sub(" ", "" if text is None else str(text)))


def code(text) -> str:
    """An inline code span showing `text` literally (code spans render no markup, so nothing is escaped)."""
    value = _BREAKS.sub(" ", "" if text is None else str(text))
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def link(text, url) -> str:
    """A link to an http(s) `url` whose text shows literally; the plain text when the URL is anything else."""
    label = plain(text)
    if not isinstance(url, str) or not url.strip():
        return label
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return label
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or re.search(r"[\x00-\x20\x7f]", url):
        return label
    return f"[{label}]({quote(url, safe=':/?#@!$&*+,;=%~')})"


def model_markdown(text) -> str:
    """Keep a model's (or a person's) formatting but never load an image: `![alt](url)` shows as a link."""
    return ("" if text is None else str(text)).replace("![", "!\\[")  # the bracket escaped: no image can start


def model_markdown_stream(pieces: Iterable[str]) -> Iterator[str]:
    """`model_markdown` for text that arrives in pieces (st.write_stream): a trailing `!` waits for the next piece,
    so an image split across two pieces is caught too."""
    held = ""
    for piece in pieces:
        text = held + piece
        held = ""
        if text.endswith("!"):
            text, held = text[:-1], "!"
        if text:
            yield model_markdown(text)
    if held:
        yield held
