"""User-controlled titles are text, not markdown (issue 13, item 9): a workspace document titled with a markdown
image pointing at a loopback server must never make the browser request it, and the title shows literally."""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect

from tests.conftest import free_port
from tests.e2e.test_signin_dashboard import _sign_in

pytestmark = pytest.mark.e2e


class _Pixel(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # a 1x1 GIF, the classic tracking pixel
        _Pixel.hits.append(self.path)
        body = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00" \
               b"\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
        self.send_response(200)
        self.send_header("Content-Type", "image/gif")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass


@pytest.fixture
def pixel_server():
    _Pixel.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Pixel)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_markdown_image_in_a_document_title_loads_nothing_and_shows_as_typed(live_server, page, pixel_server):
    title = f"![p]({pixel_server}/pixel.gif) **bold** [link](javascript:alert(1))"
    base = live_server["url"]
    _sign_in(page, base, "sam.support@keel.dev")
    page.get_by_role("link", name="Workspace").click()
    expect(page.get_by_role("heading", name="Workspace")).to_be_visible()
    page.get_by_role("button", name=re.compile("New document")).click()
    page.get_by_label("Title").last.fill(title)
    page.get_by_role("button", name="Create").click()
    expect(page.locator("textarea.keel-editor")).to_be_visible()
    page.get_by_role("button", name=re.compile("Delete")).first.click()  # the confirmation names the title too
    expect(page.get_by_text(re.compile(r"This cannot be undone"))).to_be_visible()
    page.reload()  # the document list renders the stored title again
    expect(page.locator("textarea.keel-editor")).to_be_visible()
    expect(page.get_by_text(title, exact=True).first).to_be_visible()
    page.wait_for_timeout(1500)  # time for any image the page would load
    assert page.locator(f"img[src*='{pixel_server}']").count() == 0
    assert _Pixel.hits == [], f"the browser requested {_Pixel.hits} from a document title"
