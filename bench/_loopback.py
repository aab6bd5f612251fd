"""A minimal, fast OpenAI-compatible server on 127.0.0.1 for measuring client-side overhead.

`POST /v1/chat/completions` answers a tiny fixed text, plain JSON or streamed SSE (with the usage chunk when
`stream_options.include_usage` is set); `GET /v1/models` lists one model. Every response is written in a
single `sendall` with Nagle off, so the server adds well under a millisecond and no delayed-ACK stalls.

Run as a child process (`python bench/_loopback.py`) it prints `PORT <n>` and serves until its stdin
closes (the parent exited), it receives SIGTERM, or `--max-seconds` pass; so it can never outlive the run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER_PIECES = ["Hello", " from", " the", " loopback."]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "KeelBenchLoopback/1.0"
    disable_nagle_algorithm = True
    timeout = 10  # a silent client cannot hold a thread forever

    def log_message(self, format, *args):  # noqa: A002
        pass

    def do_GET(self):
        if self.path.rstrip("/") == "/v1/models":
            self._reply(200, "application/json", json.dumps(
                {"object": "list", "data": [{"id": "m", "object": "model", "created": 0, "owned_by": "bench"}]}
            ).encode())
        else:
            self._reply(404, "application/json", b'{"error": {"message": "not found"}}')

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._reply(404, "application/json", b'{"error": {"message": "not found"}}')
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._reply(400, "application/json", b'{"error": {"message": "body is not JSON"}}')
            return
        model = body.get("model", "m")
        prompt_tokens = sum(len(str(m.get("content", "")).split()) + 4 for m in body.get("messages", []))
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(ANSWER_PIECES),
                 "total_tokens": prompt_tokens + len(ANSWER_PIECES)}
        created = int(time.time())
        if not body.get("stream"):
            payload = {"id": "chatcmpl-bench", "object": "chat.completion", "created": created, "model": model,
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(ANSWER_PIECES)},
                                    "finish_reason": "stop"}],
                       "usage": usage}
            self._reply(200, "application/json", json.dumps(payload).encode())
            return

        def event(choices, usage_value=None) -> str:
            payload = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": created,
                       "model": model, "choices": choices}
            if usage_value is not None:
                payload["usage"] = usage_value
            return "data: " + json.dumps(payload) + "\n\n"

        parts = [event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])]
        parts += [event([{"index": 0, "delta": {"content": p}, "finish_reason": None}]) for p in ANSWER_PIECES]
        parts.append(event([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
        if (body.get("stream_options") or {}).get("include_usage"):
            parts.append(event([], usage))
        parts.append("data: [DONE]\n\n")
        self._reply(200, "text/event-stream", "".join(parts).encode())

    def _reply(self, status: int, content_type: str, data: bytes) -> None:
        head = (f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(data)}\r\n"
                "Cache-Control: no-cache\r\n\r\n").encode()
        try:
            self.wfile.write(head + data)
        except OSError:
            self.close_connection = True


def serve(max_seconds: float) -> None:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    stop = threading.Event()

    def shutdown(*_):
        stop.set()

    signal.signal(signal.SIGTERM, shutdown)

    def watch_stdin():  # the parent closing our stdin (or dying) ends the server
        try:
            sys.stdin.read()
        except Exception:
            pass
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    print(f"PORT {httpd.server_address[1]}", flush=True)
    stop.wait(max_seconds)
    httpd.shutdown()
    httpd.server_close()


class LoopbackServer:
    """Starts `_loopback.py` as a child process; `url` is the OpenAI base URL (ends in /v1)."""

    def __init__(self, max_seconds: float = 600.0):
        self.max_seconds = max_seconds
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "LoopbackServer":
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--max-seconds", str(self.max_seconds)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 20
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("PORT ") or not line:
                break
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError("the loopback server did not start (no PORT line)")
        self.port = int(line.split()[1])
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def __enter__(self) -> "LoopbackServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-seconds", type=float, default=600.0)
    serve(parser.parse_args().max_seconds)
