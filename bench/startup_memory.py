"""Server start-up time and memory: seconds until `/api/health` answers 200, and peak RSS while serving pages.

Launches the server command (`--cmd`, default `.venv/bin/keel serve --port {port}`; `{port}` is replaced and
KEEL_PORT is set too) from the repo root with a fresh temporary KEEL_HOME, polls
`http://127.0.0.1:PORT/api/health` until it answers 200 (timeout 60 s), then GETs each page
(`/`, `/playground/`, `/api/health`, `/v1/models` by default) and samples the resident memory of the server
and all its children with psutil the whole time. Finally it stops the server (SIGTERM to its process group,
SIGKILL after 10 s). Baseline, measured first in the same run: a bare `python -c "import streamlit"`.

Targets: healthy within 15 s, peak RSS ≤ 1.5 GiB. Failures (command missing, server exits, health never
200, a page erroring) are reported with the tail of the server's output, never as a bare traceback.

    python bench/startup_memory.py [--json] [--cmd "..."] [--pages /,/playground/] [--timeout 60]
"""

from __future__ import annotations

import argparse
import os
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

import _common
from _common import REPO_ROOT, Report, median

TARGET_HEALTHY_S = 15.0
TARGET_RSS_GIB = 1.5
DEFAULT_CMD = ".venv/bin/keel serve --port {port}"
DEFAULT_PAGES = "/,/playground/,/api/health,/v1/models"


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

    def __init__(self, pid: int, interval: float = 0.1):
        super().__init__(name="rss-sampler", daemon=True)
        import psutil

        self._psutil = psutil
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.current = 0
        self.peak_processes = 0
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
        self.current = total
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


def body(report: Report, args) -> None:
    port = args.port or free_port()
    pages = [p if p.startswith("/") else "/" + p for p in args.pages.split(",") if p.strip()]
    command = shlex.split(args.cmd.replace("{port}", str(port)))

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
        report.check("healthy_s", None, "<=", TARGET_HEALTHY_S, "s", "seconds to healthy")
        report.check("peak_rss_gib", None, "<=", TARGET_RSS_GIB, "GiB", "peak RSS incl. children")
        return

    with tempfile.TemporaryDirectory(prefix="keel-bench-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
        env.update({"KEEL_HOME": home, "KEEL_PORT": str(port), "KEEL_HOST": "127.0.0.1",
                    "KEEL_PUBLIC_URL": f"http://127.0.0.1:{port}", "KEEL_DEV_IDP_PORT": str(free_port()),
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
                    "PYTHONUNBUFFERED": "1"})
        log_path = os.path.join(home, "server.log")
        health_url = f"http://127.0.0.1:{port}/api/health"
        with open(log_path, "wb") as log:
            started = time.perf_counter()
            proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        sampler = RssSampler(proc.pid)
        sampler.start()
        healthy_s = None
        last_status = last_error = None
        page_results = []
        try:
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
                settle_until = time.perf_counter() + args.settle
                while time.perf_counter() < settle_until and proc.poll() is None:
                    sampler.sample()
                    time.sleep(0.1)
            exit_code_early = proc.poll()
        finally:
            sampler.stop()
            stop_s, clean = stop_server(proc)
        server_tail = tail(log_path)

    gib = 2**30
    report.metric("healthy_s", healthy_s, "s", "seconds to healthy (/api/health == 200)")
    report.metric("ratio", healthy_s / base_s if healthy_s and base_s else None, "x",
                  "ratio healthy / import streamlit")
    report.metric("rss_at_healthy_mib", rss_at_healthy / 2**20, "MiB", "RSS at healthy (incl. children)")
    report.metric("peak_rss_mib", sampler.peak / 2**20, "MiB", "peak RSS incl. children")
    report.metric("peak_processes", sampler.peak_processes, label="processes in the tree at peak")
    for page in page_results:
        shown = page["status"] if page["status"] is not None else page["error"]
        report.metric(f"page {page['path']}", f"{shown} in {page['ms']:.0f} ms, {page['bytes']:,} B",
                      label=f"GET {page['path']}")
    report.metric("shutdown_s", stop_s, "s", "shutdown time")
    report.metric("shutdown_clean", clean, label="exited on SIGTERM")
    report.check("healthy_s", healthy_s, "<=", TARGET_HEALTHY_S, "s", "seconds to healthy")
    report.check("peak_rss_gib", sampler.peak / gib if healthy_s is not None else None, "<=", TARGET_RSS_GIB,
                 "GiB", "peak RSS incl. children")
    bad = [p for p in page_results if p["status"] is None or p["status"] >= 500
           or (p["status"] >= 400 and p["status"] not in (401, 403))]
    if healthy_s is not None:
        report.check("pages_ok", len(page_results) - len(bad), "==", len(pages), "",
                     "pages served (2xx/3xx, 401/403)")
    if any(p["status"] in (401, 403) for p in page_results):
        report.note("401/403 counts as served: the route exists and asks for credentials")
    report.note("plain GETs do not open a Streamlit session, so page scripts are not executed; peak RSS covers "
                "what start-up and these routes load")

    if healthy_s is None:
        if exit_code_early is not None:
            why = f"the server exited with code {exit_code_early} before {health_url} answered 200"
        else:
            why = (f"{health_url} did not answer 200 within {args.timeout:g} s (last: "
                   f"{last_status if last_status is not None else last_error})")
        report.fail(why)
    elif bad:
        report.fail("pages failed: " + ", ".join(f"{p['path']} -> {p['status'] or p['error']}" for p in bad))
    if report.error and server_tail:
        report.note("server output (tail):\n" + server_tail)


def main() -> int:
    parser = argparse.ArgumentParser(description="Server start-up time and peak memory.")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--cmd", default=DEFAULT_CMD,
                        help=f"server command; {{port}} is replaced (default: {DEFAULT_CMD!r})")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--pages", default=DEFAULT_PAGES, help=f"comma-separated paths (default: {DEFAULT_PAGES})")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for health (default 60)")
    parser.add_argument("--page-timeout", type=float, default=60.0, help="seconds per page request")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds to keep sampling RSS after the pages")
    parser.add_argument("--baseline-runs", type=int, default=3, help="runs of 'import streamlit' (default 3)")
    args = parser.parse_args()
    report = Report("startup_memory", "server start-up time and peak RSS")
    return _common.run(report, lambda r: body(r, args), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
