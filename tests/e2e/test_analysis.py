"""The Cost & drift page renders its charts from synthetic traffic in a real browser."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import OUTPUT, REPO
from tests.e2e.test_signin_dashboard import _shot, _sign_in

pytestmark = pytest.mark.e2e


def test_cost_and_drift_page_draws_every_chart(live_server, page):
    env = {**os.environ, "KEEL_HOME": str(live_server["home"])}
    env.pop("KEEL_DATABASE_URL", None)
    subprocess.run([sys.executable, "-m", "core.cli", "demo", "traffic", "--days", "14", "--rows", "3000"],
                   env=env, cwd=REPO, check=True, capture_output=True, timeout=180)
    _sign_in(page, live_server["url"], "alice.engineer@keel.dev")
    page.get_by_role("link", name="Cost & drift").click()
    charts = page.locator(".js-plotly-plot")
    expect(charts.first).to_be_visible(timeout=30_000)
    assert charts.count() >= 4
    expect(page.get_by_text("Lorenz", exact=False).first).to_be_visible()
    _shot(page, "20-cost-and-drift")
    assert (OUTPUT / "20-cost-and-drift.png").stat().st_size > 20_000
