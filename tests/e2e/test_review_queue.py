"""Review queue in Chromium at 1400×900: demo items are labelled demo, the queue pages 20 at a time and filters by
status, feature and source, and an admin removes all demo data in one confirmed action (issue 19 #9)."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import OUTPUT
from tests.e2e.test_evals import _cli
from tests.e2e.test_signin_dashboard import _sign_in

pytestmark = pytest.mark.e2e


def test_review_queue_pages_filters_and_removes_demo_data(live_server, browser):
    traffic = _cli(live_server, "demo", "traffic", "--rows", "3000", "--days", "3", "--no-workspaces")
    assert traffic.returncode == 0, traffic.stderr
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(45_000)
    try:
        _sign_in(page, live_server["url"], "ivan.admin@keel.dev")
        page.get_by_role("link", name="Review queue").click()
        expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
        counter = page.get_by_text(re.compile(r"Page \d+ of \d+ · items")).first
        expect(counter).to_contain_text("Page 1 of")
        total = int(re.search(r"of ([\d,]+)$", counter.inner_text().strip()).group(1).replace(",", ""))
        assert total > 20
        expect(page.get_by_text("demo", exact=True).first).to_be_visible()  # the badge on a demo item
        page.screenshot(path=str(OUTPUT / "review-queue-page1.png"), full_page=False)
        page.get_by_role("button", name="Next").first.click()
        expect(counter).to_contain_text("Page 2 of")
        expect(counter).to_contain_text("items 21–40")
        # feature filter: fewer items, and every card is a support call; back on page 1
        page.get_by_label("Features").click()  # noqa: the multiselect opens its list
        page.get_by_role("option", name="support").click()
        page.keyboard.press("Escape")
        expect(counter).to_contain_text("Page 1 of")
        support_total = int(re.search(r"of ([\d,]+)$", counter.inner_text().strip()).group(1).replace(",", ""))
        assert 0 < support_total < total
        expect(page.get_by_text(re.compile(r"^(workspace|search|playground|completion) · "))).to_have_count(0)
        # status filter: only the calls marked bad (earlier tests on this shared server may have marked some), so
        # the list is empty or holds fewer items than the unfiltered one
        page.get_by_text("Marked bad").click()
        empty = page.get_by_text("Nothing here", exact=False)
        expect(empty.or_(page.get_by_text(re.compile(r"^Page 1 of"))).first).to_be_visible()
        page.wait_for_timeout(1500)  # let the filtered rerun finish
        if not empty.is_visible():
            bad_total = int(re.search(r"of ([\d,]+)$", counter.inner_text().strip()).group(1).replace(",", ""))
            assert bad_total < support_total
        page.get_by_test_id("stRadioGroup").get_by_text("To review").click()
        # source filter: real calls only (earlier tests on this shared server may have made some): fewer than all
        page.get_by_label("Source").click()
        page.get_by_role("option", name="Real calls").click()
        expect(empty.or_(page.get_by_text(re.compile(r"^Page 1 of"))).first).to_be_visible()
        page.wait_for_timeout(1500)  # let the filtered rerun finish
        if not empty.is_visible():
            real_total = int(re.search(r"of ([\d,]+)$", counter.inner_text().strip()).group(1).replace(",", ""))
            assert real_total < total
        page.screenshot(path=str(OUTPUT / "review-queue-filtered.png"), full_page=False)
        # one confirmed action removes the demo data
        page.get_by_role("button", name="Remove demo data").click()
        page.get_by_role("button", name="Yes, remove demo data").click()
        expect(page.get_by_text(re.compile(r"Removed [\d,]+ demo calls"))).to_be_visible(timeout=120_000)
        page.get_by_label("Source").click()
        page.get_by_role("option", name="All", exact=True).click()
        expect(empty.or_(page.get_by_text(re.compile(r"^Page 1 of"))).first).to_be_visible()
        page.wait_for_timeout(1500)  # let the filtered rerun finish
        # Every demo item is gone. A real support call an earlier test made on this shared server may have been
        # sampled (5 % are) and rightly stays: the list is empty or holds real calls only.
        expect(page.get_by_text("demo", exact=True)).to_have_count(0)
        if not empty.is_visible():
            remaining = int(re.search(r"of ([\d,]+)$", counter.inner_text().strip()).group(1).replace(",", ""))
            assert remaining < support_total
        left = json.loads(_cli(live_server, "demo", "clear", "--yes", "--json").stdout)
        assert left["request_log"] == 0 and left["review_item"] == 0  # the button removed it all
    finally:
        context.close()
