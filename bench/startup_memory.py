"""Server start-up time and memory: seconds until `/api/health` answers 200, and peak RSS after every page was used.

Seeds a fresh temporary KEEL_HOME (`python -m core.cli demo seed --traffic 0`: the demo workspace and API key),
then launches the server command (`--cmd`, default `.venv/bin/keel serve --port {port}`; `{port}` is replaced and
KEEL_PORT is set too) from the repo root on free ports (KEEL_PORT, KEEL_DEV_IDP_PORT,
KEEL_PUBLIC_URL=http://localhost:PORT). It polls `http://127.0.0.1:PORT/api/health` until it answers 200
(timeout 60 s) and GETs a few routes (`/`, `/playground/`, `/api/health`, `/v1/models`). Then it uses every
page the way a person would, in headless Chromium driven by Playwright:

1. sign in as `ivan.admin@keel.dev` (an admin, who sees every page) through the embedded OIDC provider;
2. Home: send one message with the "Ask the model" box and wait for the answer caption ("... N tokens ...");
3. Dashboard: wait for a plotly chart;
4. Model playground: wait for the Gradio iframe, send one chat message and wait for the answer ("... TTFT ...");
5. Prices & API keys: wait for the page (price editor, the demo key);

and finally makes one `/v1/chat/completions` call with the demo API key through the openai SDK. A thread
samples the resident memory of the server and all its children with psutil every 0.2 s the whole time, so
the peak is the server's peak after every page has been used. At the end the server is stopped (SIGTERM to
its process group, SIGKILL after 10 s). Baseline, measured first in the same run: a bare
`python -c "import streamlit"`.

Targets: healthy within 15 s, peak RSS ≤ 1.5 GiB, all five browser steps and the API call done. Failures
(command missing, seeding failing, server exiting, health never 200, a route erroring, Playwright or Chromium
missing, a page step timing out) are reported as failed checks with a clear message and the tail of the
server's output, never as a bare traceback. A screenshot of a failed browser step is written to
`var/bench/startup_memory/`.

    python bench/startup_memory.py [--json] [--cmd "..."] [--pages /,/playground/] [--timeout 60]
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import _common
from _common import BENCH_VAR, REPO_ROOT, Report, median

TARGET_HEALTHY_S = 15.0
TARGET_RSS_GIB = 1.5
DEFAULT_CMD = ".venv/bin/keel serve --port {port}"
DEFAULT_PAGES = "/,/playground/,/api/health,/v1/models"
DEFAULT_USER = "ivan.admin@keel.dev"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--no-first-run"]
BROWSER_STEPS = ["sign in", "Home: Ask the model", "Dashboard", "Model playground", "Prices & API keys"]
SHOTS_DIR = BENCH_VAR / "startup_memory"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url: str, timeout: float) -> tuple[int | None, int, str | None]:
    """(status or None, body bytes, error text)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "keel-bench"}),
                                    timeout=timeout) as response:
            return response.status, len(response.read()), None
    except urllib.error.HTTPError as exc:
        try:
            size = len(exc.read())
        except Exception:
            size = 0
        return exc.code, size, None
    except Exception as exc:  # refused, reset, timeout, ...
        return None, 0, f"{type(exc).__name__}: {exc}"


class RssSampler(threading.Thread):
    """Samples the summed RSS of a process and all its descendants every `interval` seconds."""

    def __init__(self, pid: int, interval: float = 0.2):
        super().__init__(name="rss-sampler", daemon=True)
        import psutil

        self._psutil = psutil
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.current = 0
        self.peak_processes = 0
        self.samples = 0
        self._lock = threading.Lock()
        self._stop_event = threading.Event()

    def sample(self) -> int:
        psutil = self._psutil
        try:
            procs = [self.root] + self.root.children(recursive=True)
        except psutil.Error:
            return 0
        total = 0
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
        with self._lock:
            self.current = total
            self.samples += 1
            if total > self.peak:
                self.peak, self.peak_processes = total, len(procs)
        return total

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


def time_import_streamlit(runs: int) -> list[float]:
    times = []
    for _ in range(runs + 1):  # the first run warms the page cache and is dropped
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", "import streamlit"], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"python -c 'import streamlit' failed: {done.stderr.strip()[-500:]}")
        times.append(time.perf_counter() - started)
    return times[1:]


def tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, "rb") as fh:
            data = fh.read()[-8000:].decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.strip().splitlines()[-lines:])


def stop_server(proc: subprocess.Popen) -> tuple[float, bool]:
    """SIGTERM the server's process group, SIGKILL after 10 s; returns (seconds, exited on SIGTERM)."""
    started = time.perf_counter()
    if proc.poll() is not None:
        return 0.0, True
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the group we created with start_new_session=True
    except ProcessLookupError:
        return 0.0, True
    try:
        proc.wait(timeout=10)
        clean = True
    except subprocess.TimeoutExpired:
        clean = False
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
    # children that ignored SIGTERM while the leader exited: clean up the rest of our group
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return time.perf_counter() - started, clean


def short_error(exc: BaseException) -> str:
    """One readable line: Playwright errors carry a long call log after the first line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[0] if lines else ""
    waiting = next((ln for ln in lines[1:] if ln.startswith("- waiting for")), None)
    if waiting:
        text = f"{text} ({waiting.lstrip('- ')})"
    return f"{type(exc).__name__}: {text[:400]}"


# -- what a person does in the browser ----------------------------------------------------------------


def browser_journey(base: str, user: str, sampler: RssSampler, args) -> tuple[list[dict], str | None]:
    """Sign in and use every page in headless Chromium.

    Returns (one dict per step that ran: name, ok, s, rss_mib, error; an error that stopped the browser from
    running at all, or None). Stops at the first failed step: later steps need the earlier ones.
    """
    chromium = args.chromium
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import expect, sync_playwright
    except ImportError as exc:
        return [], (f"Playwright is not installed in this environment ({exc}); install the project's test "
                    "dependencies, e.g. `.venv/bin/pip install playwright` (the browser itself is the system "
                    f"Chromium at {chromium}; do not run `playwright install`)")
    if not Path(chromium).exists():
        return [], (f"Chromium is not installed at {chromium}: install Debian's chromium package (`make test` "
                    "does) or pass --chromium PATH")

    step_ms = args.step_timeout * 1000
    answer_ms = args.answer_timeout * 1000
    steps: list[dict] = []

    def sign_in(page) -> None:
        page.goto(base + "/", wait_until="domcontentloaded")
        page.get_by_role("button", name=re.compile("Sign in")).click()
        page.wait_for_url(re.compile(r"localhost:\d+/oauth2/authorize"))
        page.get_by_role("button", name=user).click()
        page.wait_for_url(re.compile(re.escape(base) + r"/?$"))
        expect(page.get_by_text(re.compile(r"^Welcome, ")).first).to_be_visible()

    def home(page) -> None:
        page.get_by_text("Ask the model", exact=True).first.wait_for()
        page.get_by_label("Message").fill("Name one planet.")
        page.get_by_role("button", name=re.compile("Send")).click()
        expect(page.get_by_text(re.compile(r"\d+ tokens")).first).to_be_visible(timeout=answer_ms)

    def dashboard(page) -> None:
        page.get_by_role("link", name="Dashboard").click()
        expect(page.locator(".js-plotly-plot").first).to_be_visible()

    def playground(page) -> None:
        page.get_by_role("link", name="Model playground").click()
        frame = page.frame_locator("iframe").first
        expect(frame.get_by_text("Keel model playground").first).to_be_visible()
        box = frame.get_by_label("Message")
        box.fill("Say hello.")
        box.press("Enter")
        expect(frame.get_by_text(re.compile("TTFT")).first).to_be_visible(timeout=answer_ms)

    def admin(page) -> None:
        page.get_by_role("link", name="Prices & API keys").click()
        expect(page.get_by_role("heading", name="Prices & API keys")).to_be_visible()
        expect(page.get_by_text("demo key").first).to_be_visible()  # the key list has been read from the database
        expect(page.get_by_test_id("stDataFrame").first).to_be_visible()  # the price editor

    actions = dict(zip(BROWSER_STEPS, [sign_in, home, dashboard, playground, admin]))
    try:
        with sync_playwright() as p:
            try:
                browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS,
                                            timeout=60_000)
            except PlaywrightError as exc:
                return [], f"Chromium ({chromium}) did not start: {short_error(exc)}"
            try:
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = context.new_page()
                page.set_default_timeout(step_ms)
                page.set_default_navigation_timeout(step_ms)
                expect.set_options(timeout=step_ms)
                for name, action in actions.items():
                    print(f"[startup_memory] browser: {name} ...", file=sys.stderr, flush=True)
                    t0 = time.perf_counter()
                    error = None
                    try:
                        action(page)
                    except Exception as exc:  # AssertionError from expect(), TimeoutError, PlaywrightError
                        error = short_error(exc)
                        try:
                            SHOTS_DIR.mkdir(parents=True, exist_ok=True)
                            shot = SHOTS_DIR / f"FAIL-{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}.png"
                            page.screenshot(path=str(shot), full_page=True, timeout=10_000)
                            error += f" [screenshot: {shot.relative_to(REPO_ROOT)}]"
                        except Exception:
                            pass
                    steps.append({"name": name, "ok": error is None, "s": time.perf_counter() - t0,
                                  "rss_mib": sampler.sample() / 2**20, "error": error})
                    if error:
                        break
                context.close()
            finally:
                browser.close()
    except Exception as exc:  # the driver itself failed (it crashed, or the browser disappeared)
        return steps, f"the browser session failed: {short_error(exc)}"
    return steps, None


def api_call(base: str, api_key: str, sampler: RssSampler, timeout: float) -> dict:
    """One /v1/chat/completions call with the demo API key through the openai SDK."""
    print("[startup_memory] API: /v1/chat/completions ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    error = detail = None
    try:
        import openai

        client = openai.OpenAI(base_url=base + "/v1", api_key=api_key, max_retries=0, timeout=timeout)
        answer = client.chat.completions.create(model="fast", max_tokens=16,
                                                messages=[{"role": "user", "content": "Say hi"}])
        content = answer.choices[0].message.content if answer.choices else None
        if not content:
            error = "the answer had no content"
        tokens = answer.usage.completion_tokens if answer.usage else None
        detail = f"{answer.model}, {tokens} tokens"
    except Exception as exc:
        error = short_error(exc)
    return {"name": "/v1/chat/completions", "ok": error is None, "s": time.perf_counter() - t0,
            "rss_mib": sampler.sample() / 2**20, "error": error, "detail": detail}


# -- the benchmark ------------------------------------------------------------------------------------


def body(report: Report, args) -> None:
    port = args.port or free_port()
    pages = [p if p.startswith("/") else "/" + p for p in args.pages.split(",") if p.strip()]
    command = shlex.split(args.cmd.replace("{port}", str(port)))

    def failed_checks() -> None:
        report.check("healthy_s", None, "<=", TARGET_HEALTHY_S, "s", "seconds to healthy")
        report.check("peak_rss_gib", None, "<=", TARGET_RSS_GIB, "GiB", "peak RSS incl. children")

    baseline = time_import_streamlit(args.baseline_runs)
    base_s = median(baseline)
    report.metric("import_streamlit_s", base_s, "s",
                  f"baseline: python -c 'import streamlit' (median of {len(baseline)})")
    report.metric("command", " ".join(command), label="server command")
    report.metric("port", port, label="port")

    exe = command[0] if command else ""
    resolved = exe if os.path.isabs(exe) else str(REPO_ROOT / exe) if os.sep in exe else shutil.which(exe)
    if not command or not resolved or not os.path.exists(resolved):
        report.fail(f"server command not found: {exe!r} (cwd {REPO_ROOT}); is the CLI installed "
                    "(`pip install -e .`)? Or pass --cmd, e.g. "
                    "--cmd \"$PWD/.venv/bin/python -m core.cli serve --port {port}\"")
        failed_checks()
        return

    with tempfile.TemporaryDirectory(prefix="keel-bench-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
        env.update({"KEEL_HOME": home, "KEEL_PORT": str(port), "KEEL_HOST": "127.0.0.1",
                    # "localhost", not 127.0.0.1: the OIDC redirect and the session cookie need one host name
                    "KEEL_PUBLIC_URL": f"http://localhost:{port}", "KEEL_DEV_IDP_PORT": str(free_port()),
                    "HF_HUB_OFFLINE": "1",
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
                    "PYTHONUNBUFFERED": "1"})
        base = f"http://localhost:{port}"

        # The demo workspace and API key, before the clock starts (as the e2e tests do).
        print("[startup_memory] seeding the demo workspace ...", file=sys.stderr, flush=True)
        seed_cmd = [sys.executable, "-m", "core.cli", "demo", "seed", "--traffic", "0"]
        try:
            seeded = subprocess.run(seed_cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                                    timeout=args.seed_timeout, stdin=subprocess.DEVNULL)
            seed_error = None if seeded.returncode == 0 else (
                f"exit code {seeded.returncode}: {(seeded.stderr or seeded.stdout).strip()[-800:]}")
        except subprocess.TimeoutExpired:
            seed_error = f"did not finish within {args.seed_timeout:g} s"
        key_file = Path(home) / "demo_api_key.txt"
        if seed_error is None and not key_file.exists():
            seed_error = f"it did not write {key_file.name}"
        if seed_error:
            report.fail(f"seeding the demo data (`{' '.join(seed_cmd[1:])}`) failed: {seed_error}")
            failed_checks()
            return
        api_key = key_file.read_text().strip()

        log_path = os.path.join(home, "server.log")
        health_url = f"http://127.0.0.1:{port}/api/health"
        print(f"[startup_memory] starting {' '.join(command)} ...", file=sys.stderr, flush=True)
        with open(log_path, "wb") as log:
            started = time.perf_counter()
            proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        healthy_s = None
        last_status = last_error = None
        page_results: list[dict] = []
        steps: list[dict] = []
        browser_error = None
        api_result = None
        rss_at_healthy = rss_before_browser = 0
        exit_code_early = None
        sampler = None
        try:
            sampler = RssSampler(proc.pid, interval=args.interval)
            sampler.start()
            deadline = started + args.timeout
            while time.perf_counter() < deadline:
                if proc.poll() is not None:
                    break
                status, _, error = http_get(health_url, timeout=2)
                last_status, last_error = status, error
                if status == 200:
                    healthy_s = time.perf_counter() - started
                    break
                time.sleep(0.1)
            rss_at_healthy = sampler.sample()
            if healthy_s is not None:
                for page in pages:
                    t0 = time.perf_counter()
                    status, size, error = http_get(f"http://127.0.0.1:{port}{page}", timeout=args.page_timeout)
                    page_results.append({"path": page, "status": status, "ms": (time.perf_counter() - t0) * 1000,
                                         "bytes": size, "error": error})
                    sampler.sample()
                rss_before_browser = sampler.sample()
                steps, browser_error = browser_journey(base, args.user, sampler, args)
                if proc.poll() is None:
                    api_result = api_call(base, api_key, sampler, args.answer_timeout)
                settle_until = time.perf_counter() + args.settle
                while time.perf_counter() < settle_until and proc.poll() is None:
                    sampler.sample()
                    time.sleep(0.1)
            exit_code_early = proc.poll()
        finally:
            if sampler is not None:
                sampler.stop()
            stop_s, clean = stop_server(proc)
        server_tail = tail(log_path)

    peak = sampler.peak if sampler is not None else 0
    gib = 2**30
    report.metric("healthy_s", healthy_s, "s", "seconds to healthy (/api/health == 200)")
    report.metric("ratio", healthy_s / base_s if healthy_s and base_s else None, "x",
                  "ratio healthy / import streamlit")
    report.metric("rss_at_healthy_mib", rss_at_healthy / 2**20, "MiB", "RSS at healthy (incl. children)")
    for page in page_results:
        shown = page["status"] if page["status"] is not None else page["error"]
        report.metric(f"page {page['path']}", f"{shown} in {page['ms']:.0f} ms, {page['bytes']:,} B",
                      label=f"GET {page['path']}")
    if healthy_s is not None:
        report.metric("rss_before_browser_mib", rss_before_browser / 2**20, "MiB", "RSS after the GETs")
    for step in steps + ([api_result] if api_result else []):
        outcome = "ok" if step["ok"] else "FAIL"
        extra = f", {step['detail']}" if step.get("detail") else ""
        report.metric(f"step {step['name']}", f"{outcome} in {step['s']:.1f} s{extra}, RSS after "
                      f"{step['rss_mib']:,.0f} MiB", label=f"  {step['name']}")
    report.metric("peak_rss_mib", peak / 2**20, "MiB", "peak RSS incl. children (whole run)")
    report.metric("peak_processes", sampler.peak_processes if sampler else 0, label="processes in the tree at peak")
    report.metric("rss_samples", sampler.samples if sampler else 0, label=f"RSS samples (every {args.interval:g} s)")
    report.metric("shutdown_s", stop_s, "s", "shutdown time")
    report.metric("shutdown_clean", clean, label="exited on SIGTERM")

    report.check("healthy_s", healthy_s, "<=", TARGET_HEALTHY_S, "s", "seconds to healthy")
    report.check("peak_rss_gib", peak / gib if healthy_s is not None else None, "<=", TARGET_RSS_GIB,
                 "GiB", "peak RSS incl. children")
    bad = [p for p in page_results if p["status"] is None or p["status"] >= 500
           or (p["status"] >= 400 and p["status"] not in (401, 403))]
    if healthy_s is not None:
        report.check("pages_ok", len(page_results) - len(bad), "==", len(pages), "",
                      "routes served to GET (2xx/3xx, 401/403)")
        report.check("browser_steps", sum(s["ok"] for s in steps), "==", len(BROWSER_STEPS), "",
                      "browser steps done (sign-in + 4 pages)")
        report.check("api_calls", int(bool(api_result and api_result["ok"])), "==", 1, "",
                      "/v1/chat/completions answered")
    if any(p["status"] in (401, 403) for p in page_results):
        report.note("401/403 counts as served for the plain GETs: the route exists and asks for credentials")

    if healthy_s is None:
        if exit_code_early is not None:
            why = f"the server exited with code {exit_code_early} before {health_url} answered 200"
        else:
            why = (f"{health_url} did not answer 200 within {args.timeout:g} s (last: "
                   f"{last_status if last_status is not None else last_error})")
        report.fail(why)
    else:
        if bad:
            report.fail("routes failed: " + ", ".join(f"{p['path']} -> {p['status'] or p['error']}" for p in bad))
        if browser_error:
            report.fail(f"browser: {browser_error}")
        failed = next((s for s in steps if not s["ok"]), None)
        if failed:
            skipped = BROWSER_STEPS[len(steps):]
            report.fail(f"browser step {failed['name']!r} failed: {failed['error']}"
                        + (f" (not run: {', '.join(skipped)})" if skipped else ""))
        if len(steps) == len(BROWSER_STEPS) and not failed and not browser_error:
            report.note(f"peak RSS covers start-up, the GETs, a signed-in browser session as {args.user} on every "
                        f"page (two model answers), one /v1 call and {args.settle:g} s after; the browser itself "
                        "is not counted")
        else:
            report.note("the browser steps did not all run, so the peak RSS does not cover every page")
        if api_result and not api_result["ok"]:
            report.fail(f"/v1/chat/completions failed: {api_result['error']}")
        elif api_result is None:
            report.fail("/v1/chat/completions was not called: the server had exited")
        if exit_code_early is not None:
            report.fail(f"the server exited with code {exit_code_early} during the run")
    if report.error and server_tail:
        report.note("server output (tail):\n" + server_tail)


def main() -> int:
    parser = argparse.ArgumentParser(description="Server start-up time and peak memory after every page was used.")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--cmd", default=DEFAULT_CMD,
                        help=f"server command; {{port}} is replaced (default: {DEFAULT_CMD!r})")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--pages", default=DEFAULT_PAGES, help=f"comma-separated paths to GET (default: {DEFAULT_PAGES})")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for health (default 60)")
    parser.add_argument("--page-timeout", type=float, default=60.0, help="seconds per GET")
    parser.add_argument("--user", default=DEFAULT_USER, help=f"demo user to sign in as (default {DEFAULT_USER})")
    parser.add_argument("--chromium", default=CHROMIUM, help=f"Chromium executable (default {CHROMIUM})")
    parser.add_argument("--step-timeout", type=float, default=30.0,
                        help="seconds for each browser action to find its element (default 30)")
    parser.add_argument("--answer-timeout", type=float, default=120.0,
                        help="seconds to wait for a model answer, in the browser or from /v1 (default 120)")
    parser.add_argument("--seed-timeout", type=float, default=120.0, help="seconds for `demo seed` (default 120)")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between RSS samples (default 0.2)")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds to keep sampling RSS at the end")
    parser.add_argument("--baseline-runs", type=int, default=3, help="runs of 'import streamlit' (default 3)")
    args = parser.parse_args()
    report = Report("startup_memory", "server start-up time and peak RSS after every page was used")
    return _common.run(report, lambda r: body(r, args), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
