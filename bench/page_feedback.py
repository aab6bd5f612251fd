"""How soon a person sees something after pressing each page's main button, and when it is done (issue 19).

Starts a real Keel server (`keel serve`, demo data seeded into a throw-away home) and headless Chromium, signs in
as erin.exec@keel.dev and, on each page, presses the main button and polls the page every 50 ms for:

- first feedback: the first change that tells the person the click was taken ("Working…", a progress bar,
  the sources list), and
- first result: the first piece of the answer itself (the first streamed words, the tool findings), and
- done: the page's finished state.

Baseline in the same run: before issue 19 the pages showed nothing of their own until the model's first words
(Workspace; Search, whose sources came only after the whole answer) or until the model had finished (PR review:
tool findings and model explanations together). So "before" is read from the same run's events — the moment the
model's first words (Workspace, Search) or the end of the model's pass (PR review) appeared — and
the ratio is before/now for the time to a first useful result. Support chat had no change in this path and is
reported without a ratio.

    .venv/bin/python bench/page_feedback.py [--json] [--keep] [--url http://localhost:8501]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import REPO_ROOT, Report  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--no-first-run"]
USER = "erin.exec@keel.dev"
POLL_S = 0.05
MODEL_S = 300.0


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    port, idp = free_port(), free_port()
    env = {**os.environ, "KEEL_HOME": str(home), "KEEL_PORT": str(port), "KEEL_DEV_IDP_PORT": str(idp),
           "KEEL_PUBLIC_URL": f"http://localhost:{port}", "HF_HUB_OFFLINE": "1"}
    env.pop("KEEL_DATABASE_URL", None)
    subprocess.run([sys.executable, "-m", "core.cli", "demo", "seed", "--traffic", "0"], env=env, cwd=REPO_ROOT,
                   check=True, capture_output=True, timeout=900)
    log = open(home / "server.log", "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([sys.executable, "-m", "core.cli", "serve", "--port", str(port)], env=env,
                            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://localhost:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited: " + (home / "server.log").read_text()[-2000:])
        try:
            if httpx.get(base + "/api/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the server was not healthy within 300 s")


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Watch:
    """Polls the page after a click and records when each named condition first held."""

    def __init__(self, page, conditions: dict[str, str]):
        self.page, self.conditions = page, conditions  # name -> JS expression returning a boolean
        self.seen: dict[str, float] = {}

    def run(self, click, until: str, timeout_s: float = MODEL_S) -> dict[str, float]:
        js = "() => ({" + ", ".join(f"{k!r}: !!({v})" for k, v in self.conditions.items()) + "})"
        started = time.perf_counter()
        click()
        while time.perf_counter() - started < timeout_s:
            state = self.page.evaluate(js)
            now = time.perf_counter() - started
            for name, held in state.items():
                if held and name not in self.seen:
                    self.seen[name] = now
            if until in self.seen:
                break
            time.sleep(POLL_S)
        return self.seen


TEXT = "document.body.innerText"


def sign_in(page, base: str) -> None:
    page.goto(base + "/")
    page.get_by_role("button", name=re.compile("Sign in")).click()
    page.wait_for_url(re.compile(r"localhost:\d+/oauth2/authorize"))
    page.get_by_role("button", name=USER).click()
    page.wait_for_url(re.compile(re.escape(base) + r"/?$"))


def workspace(page, base: str) -> dict[str, float]:
    from playwright.sync_api import expect

    page.goto(base + "/workspace")
    page.get_by_role("button", name=re.compile("New document")).click()
    page.get_by_label("Title").last.fill("Bench notes")
    page.get_by_role("button", name="Create").click()
    area = page.locator("textarea.keel-editor")
    expect(area).to_be_editable(timeout=60_000)
    expect(area).not_to_have_attribute("aria-busy", "true", timeout=60_000)  # bound to the new document
    area.fill("We met on Monday. Alice will send the launch plan by Friday; Bob books the venue. Budget stays "
              "at 4,000 euros and the launch date moves to 12 May.")
    area.blur()
    page.wait_for_timeout(1500)
    area.evaluate("el => { el.focus(); el.setSelectionRange(0, el.value.length); "
                  "el.dispatchEvent(new Event('select')); }")
    expect(page.get_by_text(re.compile(r"\d+ characters selected"))).to_be_visible(timeout=30_000)
    page.wait_for_timeout(800)
    watch = Watch(page, {"feedback": f"{TEXT}.includes('Working…')",
                         "first_result": f"{TEXT}.includes('▌')",
                         "done": "[...document.querySelectorAll('button')].some(b => b.innerText.trim() === 'Discard')"
                                 f" || {TEXT}.includes('could not answer')"})
    return watch.run(lambda: page.get_by_role("button", name="Summarize").click(), "done")


def search(page, base: str) -> dict[str, float]:
    page.goto(base + "/search")
    page.get_by_label("Question").fill("How many days of PTO can I carry into next year?")
    watch = Watch(page, {"feedback": f"{TEXT}.includes('Searching the documents') || /Sources \\(\\d+\\)/.test({TEXT})",
                         "first_result": f"/Sources \\(\\d+\\)/.test({TEXT})",
                         "answer_first_words": f"{TEXT}.includes('▌')",
                         "done": f"{TEXT}.includes('What the model read') || {TEXT}.includes('do not cover')"})
    return watch.run(lambda: page.get_by_role("button", name="Search").click(), "done")


def pr_review(page, base: str) -> dict[str, float]:
    page.goto(base + "/pr_review")
    page.get_by_text("Ignore the cache").click()  # the switch's label takes the click
    page.wait_for_timeout(1500)
    watch = Watch(page, {"feedback": "!!document.querySelector('[data-testid=stProgress]') || "
                                     f"{TEXT}.includes('Reviewing')",
                         "first_result": "!!document.querySelector(\"[class*='st-key-prr_card_']\")",
                         "done": f"/Updated with the model|could not explain|did not explain/.test({TEXT})"})
    return watch.run(lambda: page.get_by_role("button", name="Review", exact=True).click(), "done")


def support(page, base: str) -> dict[str, float]:
    page.goto(base + "/support_chat")
    page.get_by_role("button", name=re.compile("New conversation")).click()
    page.wait_for_timeout(1500)
    box = page.get_by_placeholder("Write your message…")
    box.fill("How long does standard shipping take?")
    watch = Watch(page, {"feedback": f"{TEXT}.includes('The bot is thinking') || "
                                     f"{TEXT}.includes('How long does standard shipping take?')",
                         "first_result": f"{TEXT}.includes('Read more')",
                         "done": f"{TEXT}.includes('Read more')"})
    return watch.run(lambda: box.press("Enter"), "done")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the throw-away home (server log)")
    parser.add_argument("--url", help="use a Keel server already running there (demo data seeded) instead")
    args = parser.parse_args()
    report = Report("page_feedback", "click → first feedback / first result / done, per page")
    home = Path(tempfile.mkdtemp(prefix="keel-bench-pages-")) / "keel"
    home.mkdir(parents=True)
    proc = None
    try:
        from playwright.sync_api import sync_playwright

        if args.url:
            base = args.url.rstrip("/")
        else:
            print("seeding and starting the server…", file=sys.stderr)
            proc, base = start_server(home)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            page.set_default_timeout(60_000)
            sign_in(page, base)
            for name, run, before_key in (("workspace", workspace, "first_result"), ("search", search, "answer_first_words"),
                                          ("pr_review", pr_review, "done"), ("support", support, None)):
                print(f"{name}…", file=sys.stderr)
                seen = run(page, base)
                for key in ("feedback", "first_result", "done"):
                    report.metric(f"{name}.{key}_s", seen.get(key), "s")
                if "answer_first_words" in seen:
                    report.metric(f"{name}.answer_first_words_s", seen["answer_first_words"], "s")
                report.check(f"{name}.feedback_s", seen.get("feedback"), "<=", 2.0, "s",
                             f"{name}: click → first visible feedback")
                if before_key and seen.get(before_key) and seen.get("first_result"):
                    # before: nothing useful was on the page until this event
                    before = seen[before_key]
                    now = seen["first_result"] if name != "workspace" else seen["feedback"]
                    report.metric(f"{name}.before_first_useful_s", before, "s",
                                  f"{name}: before issue 19, first thing shown (same run)")
                    report.metric(f"{name}.ratio_before_over_now", before / max(now, 1e-3), "x")
            browser.close()
        report.note("before = the moment the old page first showed anything of the answer, read from this run: "
                    "Workspace the model's first words, Search the answer's first words (its sources were listed only "
                    "after the whole answer), PR review the end of the model's pass (tool findings waited for it)")
    except Exception as exc:  # noqa: BLE001 - a benchmark reports its failure as a line, not a traceback
        report.fail(f"{type(exc).__name__}: {str(exc)[:500]}")
    finally:
        if proc is not None:
            stop(proc)
        if not args.keep:
            shutil.rmtree(home.parent, ignore_errors=True)
    report.emit(args.json)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
