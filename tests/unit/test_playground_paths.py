"""Issue 19 #8: the Model playground page and the Gradio mount live at different paths, and a person who opens
a mount's address in the tab itself lands on Keel's page instead of bare Gradio or a raw JSON 401."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.testclient import TestClient

from ui.playground import PAGE_FOR_MOUNT, PLAYGROUND_PAGE, PrefixRoute
from ui.shell import PAGES, URL_PATHS


def _client() -> TestClient:
    async def gradio(scope, receive, send):  # stands in for the mounted Gradio host: answers like its auth does
        await JSONResponse({"detail": {"error": "Not authenticated"}}, status_code=401)(scope, receive, send)

    return TestClient(Starlette(routes=[PrefixRoute("/playground", gradio)]), follow_redirects=False)


def test_page_and_mount_paths_differ():
    page = URL_PATHS["pages/playground.py"]
    assert "/" + page == PLAYGROUND_PAGE and not PLAYGROUND_PAGE.startswith("/playground")
    assert any(p[1] == "pages/playground.py" for p in PAGES)


def test_a_tab_navigation_to_a_mount_goes_to_its_keel_page():
    client = _client()
    for path, page in [("/playground", PLAYGROUND_PAGE), ("/playground/", PLAYGROUND_PAGE),
                       ("/playground/code/", PAGE_FOR_MOUNT["/playground/code"])]:
        r = client.get(path, headers={"sec-fetch-dest": "document"})
        assert r.status_code == 303 and r.headers["location"] == page, (path, r.status_code)


def test_frames_and_api_calls_still_reach_gradio():
    client = _client()
    assert client.get("/playground/", headers={"sec-fetch-dest": "iframe"}).status_code == 401
    assert client.get("/playground/").status_code == 401  # no browser header: scripts get the API answer
    assert client.get("/playground/config", headers={"sec-fetch-dest": "document"}).status_code == 401
