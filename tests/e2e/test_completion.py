"""Code completion in a real browser: sign in, open the page, type in the playground's editor, see a ghost
suggestion stream in from the embedded model, accept it with Tab, and see the editor text and the panel change."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.test_signin_dashboard import _shot, _sign_in

pytestmark = pytest.mark.e2e


def _editor_text(frame) -> str:
    return frame.locator("#keel-code-0 .cm-content").inner_text()


@pytest.mark.embedded_model
def test_type_see_a_suggestion_and_accept_it(live_server, page):
    _sign_in(page, live_server["url"], "milo.intern@keel.dev")  # every signed-in user may use it
    page.get_by_role("link", name="Code completion").click()
    frame = page.frame_locator("iframe").first
    expect(frame.get_by_text("Code completion playground")).to_be_visible(timeout=60_000)
    editor = frame.locator("#keel-code-0 .cm-content")
    expect(editor).to_be_visible()
    # at the end of the file, start a new function (the editor indents the body itself)
    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    for _ in range(2):  # out of the method body: Backspace removes one indent unit
        page.keyboard.press("Backspace")
    page.keyboard.type("def count_items(inventory):\nreturn len(", delay=60)
    expect(frame.locator("#keel-code-0 .cm-line", has_text="def count_items(inventory):")).to_be_visible()
    before = _editor_text(frame)
    ghost = frame.locator(".keel-ghost").first
    expect(ghost).to_be_visible(timeout=120_000)
    expect(frame.locator("#keel-status")).to_contain_text(re.compile(r"shown"), timeout=120_000)
    suggestion = "".join(frame.locator(".keel-ghost").all_inner_texts())
    assert suggestion.strip()
    _shot(page, "20-completion-suggestion")
    page.keyboard.press("Tab")
    after = _editor_text(frame)
    assert after != before and len(after) > len(before)
    assert suggestion.split("\n")[0].strip() in after
    expect(frame.locator("#keel-stats-body")).to_contain_text(re.compile(r"accepted \(1/\d+\)"))
    _shot(page, "21-completion-accepted")


def test_the_completion_playground_requires_sign_in(live_server):
    assert httpx.get(live_server["url"] + "/playground/code/", timeout=10).status_code in (401, 403)
    r = httpx.post(live_server["url"] + "/api/complete", json={"path": "a.py", "text": "x", "cursor": 1},
                   timeout=10)
    assert r.status_code == 401


_DOC_JS = """el => { const c = el.querySelector('.cm-content'); const t = c.cmTile;
  const v = (t && t.root && t.root.view) || (c.cmView && (c.cmView.rootView || c.cmView).view);
  return v.state.doc.toString(); }"""


def test_editor_wraps_long_lines_and_indents_like_the_file(live_server, page):
    """Issue 19 #10: long lines wrap (no cut-off), Enter and Tab indent with the file's 4 spaces, not 2."""
    page.set_viewport_size({"width": 1400, "height": 900})
    _sign_in(page, live_server["url"], "milo.intern@keel.dev")
    page.get_by_role("link", name="Code completion").click()
    frame = page.frame_locator("iframe").first
    host = frame.locator("#keel-code-0")
    expect(host.locator(".cm-content")).to_be_visible(timeout=60_000)
    expect(host.locator(".cm-content.cm-lineWrapping")).to_have_count(1)  # long lines wrap
    host.locator(".cm-content").click()
    page.keyboard.press("Control+End")
    page.keyboard.press("Enter")
    for _ in range(3):  # Shift+Tab dedents one 4-space unit: back to column 0 from the last line's indent
        page.keyboard.press("Shift+Tab")
    page.keyboard.type("def keel_indent_probe(values):", delay=20)
    page.keyboard.press("Enter")
    page.keyboard.type("total = 0", delay=20)
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    page.keyboard.type("x = " + "1 + " * 60 + "1", delay=0)
    page.keyboard.press("Escape")
    text = host.evaluate(_DOC_JS)
    tail = text[text.index("\ndef keel_indent_probe") + 1:].split("\n")  # at column 0
    assert tail[1] == "    total = 0", tail  # Enter after a colon: one 4-space unit
    assert tail[2].startswith("        x = 1 + 1"), tail  # Enter keeps the indent, Tab adds 4 more
    box = host.locator(".cm-line", has_text="x = 1 + 1 + 1").first.bounding_box()
    scroller = host.locator(".cm-scroller").bounding_box()
    assert box["x"] + box["width"] <= scroller["x"] + scroller["width"] + 1  # wrapped inside the editor
    assert box["height"] > 30  # on more than one visual line
    _shot(page, "22-completion-indent-wrap")
