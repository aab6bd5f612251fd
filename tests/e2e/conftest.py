"""A real Keel server (`keel serve`) and a real headless Chromium for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "test-output" / "e2e"
CHROMIUM = "/usr/bin/chromium"
# Playwright's 5 s default for `expect` is shorter than one Streamlit rerun on a 2-core machine running the rest of
# the suite; a test that means "soon" says so with its own, shorter timeout.
EXPECT_TIMEOUT_MS = 15_000
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--no-first-run"]


@pytest.fixture(scope="session", autouse=True)
def _patient_expect():
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("e2e") / "keel"
    port, idp_port = free_port(), free_port()
    env = {**os.environ, "KEEL_HOME": str(home), "KEEL_PORT": str(port), "KEEL_DEV_IDP_PORT": str(idp_port),
           "KEEL_PUBLIC_URL": f"http://localhost:{port}", "HF_HUB_OFFLINE": "1"}
    env.pop("KEEL_DATABASE_URL", None)
    subprocess.run([sys.executable, "-m", "core.cli", "demo", "seed", "--traffic", "0"], env=env, cwd=REPO,
                   check=True, capture_output=True, timeout=600)  # a shared 2-core machine
    log = open(home / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "core.cli", "serve", "--port", str(port)], env=env, cwd=REPO,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://localhost:{port}"
    started = time.monotonic()
    try:
        while time.monotonic() - started < 240:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {(home / 'server.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise RuntimeError(f"server not healthy in 240 s: {(home / 'server.log').read_text()[-3000:]}")
        yield {"url": base, "home": home, "api_key": (home / "demo_api_key.txt").read_text().strip(),
               "pid": proc.pid, "startup_s": time.monotonic() - started}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed: run `make test` (it installs Debian's chromium package)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.failed_in_call = report.failed


@pytest.fixture
def page(browser, request):
    OUTPUT.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    if getattr(request.node, "failed_in_call", False):  # keep what the browser showed when it failed
        pg.screenshot(path=str(OUTPUT / f"FAIL-{request.node.name}.png"), full_page=True)
    context.close()
