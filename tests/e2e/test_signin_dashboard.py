"""Sign in through the embedded OIDC provider, make calls, see them on the Dashboard, sign out."""

from __future__ import annotations

import re

import httpx
import openai
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import OUTPUT

pytestmark = pytest.mark.e2e


def _shot(page, name: str) -> None:
    page.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=True)


def _sign_in(page, base: str, user: str) -> None:
    page.goto(base + "/")
    expect(page.get_by_text("dev identity provider")).to_be_visible()
    expect(page.get_by_text("Marketing intern")).to_be_visible()  # the demo-user table
    _shot(page, "01-login")
    page.get_by_role("button", name=re.compile("Sign in")).click()
    page.wait_for_url(re.compile(r"localhost:\d+/oauth2/authorize"))
    _shot(page, "02-provider")
    page.get_by_role("button", name=user).click()
    page.wait_for_url(re.compile(re.escape(base) + r"/?$"))


def test_unauthenticated_page_shows_sign_in(live_server, page):
    page.goto(live_server["url"] + "/dashboard")
    expect(page.get_by_role("button", name=re.compile("Sign in"))).to_be_visible()
    expect(page.get_by_text("LLM dashboard")).to_have_count(0)


def test_sign_in_chat_dashboard_sign_out(live_server, page):
    base = live_server["url"]
    # Calls made earlier in the test, through the OpenAI-compatible gateway with the demo API key.
    client = openai.OpenAI(base_url=base + "/v1", api_key=live_server["api_key"], max_retries=0, timeout=120)
    answer = client.chat.completions.create(model="fast", max_tokens=16,
                                            messages=[{"role": "user", "content": "Say hi"}])
    assert answer.choices[0].message.content

    _sign_in(page, base, "ivan.admin@keel.dev")
    expect(page.get_by_text("Welcome, Ivan")).to_be_visible()
    expect(page.get_by_text("Clearance: 2 (confidential)")).to_be_visible()
    _shot(page, "03-home")

    page.get_by_label("Message").fill("Name one planet.")
    page.get_by_role("button", name=re.compile("Send")).click()
    expect(page.get_by_text(re.compile(r"embedded/smollm2.*tokens"))).to_be_visible(timeout=60_000)
    _shot(page, "04-home-answer")

    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_text("LLM dashboard")).to_be_visible()
    requests_metric = page.get_by_test_id("stMetric").filter(has_text="Requests")
    expect(requests_metric).to_be_visible()
    count = int(re.sub(r"\D", "", requests_metric.get_by_test_id("stMetricValue").inner_text()))
    assert count >= 2, f"dashboard shows {count} requests, expected the two made above"
    chart = page.locator(".js-plotly-plot").first
    expect(chart).to_be_visible()
    expect(chart.locator(".bars path, .scatterlayer path").first).to_be_attached()
    _shot(page, "05-dashboard")

    page.get_by_role("button", name=re.compile("Sign out")).click()
    # Streamlit sends the browser to the provider's end_session endpoint, which asks to confirm.
    page.get_by_role("button", name="End session").click()
    page.wait_for_url(re.compile(re.escape(base)))
    page.goto(base + "/")
    expect(page.get_by_role("button", name=re.compile("Sign in"))).to_be_visible()
    _shot(page, "06-signed-out")


def test_intern_does_not_see_operator_pages(live_server, page):
    _sign_in(page, live_server["url"], "milo.intern@keel.dev")
    expect(page.get_by_text("Welcome, Milo")).to_be_visible()
    expect(page.get_by_role("link", name="Dashboard")).to_have_count(0)
    page.goto(live_server["url"] + "/playground/")
    assert "Keel model playground" not in page.content()


def test_playground_requires_sign_in(live_server):
    r = httpx.get(live_server["url"] + "/playground/", timeout=10)
    assert r.status_code in (401, 403)


def test_playground_streams_an_answer_inside_the_page(live_server, page):
    _sign_in(page, live_server["url"], "alice.engineer@keel.dev")
    page.get_by_role("link", name="Model playground").click()
    frame = page.frame_locator("iframe").first
    expect(frame.get_by_text("Keel model playground")).to_be_visible(timeout=60_000)
    box = frame.get_by_label("Message")
    box.fill("Say hello.")
    box.press("Enter")
    expect(frame.get_by_text(re.compile(r"embedded/smollm2.*TTFT"))).to_be_visible(timeout=90_000)
    _shot(page, "07-playground")
    frame.get_by_role("tab", name="Compare tiers").click()
    frame.get_by_label("Prompt").fill("Name a fruit.")
    frame.get_by_role("button", name="Run both").click()
    for side in ("#left-answer", "#right-answer"):
        expect(frame.locator(side).get_by_text(re.compile(r"smollm2.*TTFT"))).to_be_visible(timeout=120_000)
    _shot(page, "08-playground-compare")


def test_admin_sees_prices_and_budgets(live_server, page):
    _sign_in(page, live_server["url"], "erin.exec@keel.dev")
    page.get_by_role("link", name="Prices & API keys").click()
    expect(page.get_by_text("Monthly budgets (USD)")).to_be_visible()
    expect(page.get_by_role("button", name="Save budgets")).to_be_visible()
    expect(page.get_by_role("button", name="Save prices")).to_be_visible()
    expect(page.get_by_label("Workspace id")).to_have_value("demo")
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
    page.wait_for_timeout(1500)  # the grids draw on a canvas once their data arrives
    _shot(page, "09-admin")
