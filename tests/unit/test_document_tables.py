"""HTML tables stay readable in the document viewer (issue 19 #6): extraction keeps a row's cells apart on one line,
the viewer turns such lines into a table, and every cell reaches the page escaped."""

from __future__ import annotations

from core.search import passage_blocks
from core.search._corpus import _normalise, html_to_text
from core.config import REPO_ROOT
from ui.search import table_html


def test_html_table_rows_keep_their_cells_apart():
    body = (REPO_ROOT / "data/search/corpus/sales/pricing-sheet.html").read_text().split("---", 2)[2]
    text = _normalise(html_to_text(body))
    assert "Starter | 19 euros per seat per month\nTeam | 39 euros per seat per month" in text
    assert "Starter19" not in text
    layout = "<table>\n <tr><th>Band</th><th>Salary</th></tr>\n <tr><td>L1</td><td>40,000 &lt;b&gt;</td></tr>\n</table>"
    assert _normalise(html_to_text("<p>Bands</p>" + layout + "<p>after</p>")) == \
        "Bands\n\nBand | Salary\nL1 | 40,000 <b>\n\nafter"


def test_viewer_shows_table_lines_as_a_table_and_escapes_cells():
    blocks = passage_blocks("Plans\n\nStarter | 19 euros\nTeam | <script>alert(1)</script>\nafter | this | too")
    assert blocks == [("text", "Plans\n"), ("table", [["Starter", "19 euros"], ["Team", "<script>alert(1)</script>"]]),
                      ("text", "after | this | too")]
    assert passage_blocks("| a | b |\n|---|:-:|\n| 1 | 2 |") == [("table", [["a", "b"], ["1", "2"]])]
    assert passage_blocks("one line with a | pipe") == [("text", "one line with a | pipe")]
    out = table_html(blocks[1][1])
    assert "<script>" not in out and "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert out.count("<tr>") == 2 and out.count("<td>") == 4
