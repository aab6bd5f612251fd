"""The Evals and Review queue pages in a real browser: runs side by side, a run started from the page with its
progress, and a bad call turned into an eval case that then shows up among the collected cases."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import OUTPUT, REPO
from tests.e2e.test_signin_dashboard import _shot, _sign_in

pytestmark = pytest.mark.e2e


def _cli(live_server, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KEEL_HOME": str(live_server["home"]), "HF_HUB_OFFLINE": "1"}
    env.pop("KEEL_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "core.cli", *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def test_evals_page_shows_runs_side_by_side_and_runs_a_suite(live_server, page):
    first = _cli(live_server, "eval", "run", "llm-replays", "--baseline", "none", "--json")
    assert first.returncode == 0, first.stderr
    second = _cli(live_server, "eval", "run", "llm-replays", "--json")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)[0]["baseline_run_id"] == json.loads(first.stdout)[0]["id"]

    _sign_in(page, live_server["url"], "alice.engineer@keel.dev")
    page.get_by_role("link", name="Evals").click()
    expect(page.get_by_role("heading", name="Evals")).to_be_visible()
    expect(page.get_by_text("Side by side")).to_be_visible()
    expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)
    expect(page.locator(".js-plotly-plot").nth(1)).to_be_visible(timeout=30_000)  # scores over time, segments A vs B
    expect(page.get_by_text("regressed ·", exact=False)).to_be_visible()
    _shot(page, "40-evals")
    page.get_by_text("Score by segment").scroll_into_view_if_needed()
    _shot(page, "40-evals-side-by-side")

    # start a run from the page and watch it finish
    suite_box = page.get_by_role("combobox", name="Suite to run")
    suite_box.click()
    page.keyboard.type("llm-replays")
    page.keyboard.press("Enter")
    expect(suite_box).to_have_value("llm-replays")
    page.get_by_role("button", name="Run suite").click()
    expect(page.get_by_text("llm-replays:", exact=False).first).to_be_visible(timeout=15_000)
    listed = None
    for _ in range(120):
        runs = json.loads(_cli(live_server, "eval", "runs", "--suite", "llm-replays", "--json").stdout)
        if len(runs) == 3 and runs[0]["status"] != "running":
            listed = runs
            break
        page.wait_for_timeout(1000)
    assert listed is not None and listed[0]["started_by"] == "alice.engineer@keel.dev"
    assert (OUTPUT / "40-evals.png").stat().st_size > 20_000


def test_a_bad_call_becomes_an_eval_case_in_one_click(live_server, page):
    traffic = _cli(live_server, "demo", "traffic", "--rows", "1500", "--days", "3", "--no-workspaces")
    assert traffic.returncode == 0, traffic.stderr
    _sign_in(page, live_server["url"], "ivan.admin@keel.dev")
    page.get_by_role("link", name="Review queue").click()
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    expect(page.get_by_text("Input").first).to_be_visible(timeout=30_000)
    page.get_by_label("Note").first.fill("made up a refund it cannot do")
    page.get_by_role("button", name="Bad").first.click()
    # shown under "bad" now; one click makes the eval case
    expect(page.get_by_test_id("stMetricValue").nth(2)).to_have_text("1", timeout=30_000)  # Bad: 1
    page.get_by_text("Marked bad").click()
    make = page.get_by_role("button", name="Make eval case").first
    expect(make).to_be_visible(timeout=30_000)
    _shot(page, "41-review-queue")
    make.click()
    expect(page.get_by_text("made from this call", exact=False).first).to_be_visible(timeout=30_000)
    page.get_by_role("link", name="Evals").click()
    expect(page.get_by_text("From review queue", exact=False)).to_be_visible(timeout=30_000)
    expect(page.get_by_text("made up a refund it cannot do", exact=False).first).to_be_visible()
    _shot(page, "42-collected-cases")
