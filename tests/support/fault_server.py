"""A fault-injecting OpenAI-compatible HTTP server on loopback, for gateway reliability tests.

`FaultServer` serves `POST /v1/chat/completions` (streamed SSE or plain JSON) and `GET /v1/models` from a
daemon thread. What each chat request gets is scripted from the test: `server.script(["http500", "ok"])`
queues modes for the next requests; when the queue is empty `server.default_mode` is used.

Modes:
  ok                        the fixed answer word by word (or a JSON object matching the requested schema)
  http500                   HTTP 500 with an OpenAI-style error body
  http429                   HTTP 429 with `Retry-After: <server.retry_after>` (omitted when None)
  stall_before_first_token  200 + SSE headers, then nothing for `stall_s` seconds (longer than a read timeout)
  stall_before_headers      nothing at all (not even headers) for `stall_s` seconds
  cut_midway                `cut_after` content chunks, then the socket is closed inside the chunked body
  cut_midway_clean          like cut_midway, but the body is close-delimited (no chunked encoding), so the
                            cut looks like a clean end of stream at the HTTP level
  malformed_sse             a `data:` line that is not JSON
  invalid_json              a well-formed stream whose content is not JSON (meant for requests with a schema)
  slow                      like ok, with `token_delay` seconds before every content chunk

Every received chat request body is recorded in `server.requests` and the mode it got in `server.served`.
All waits are bounded and end early when the server stops, so shutdown is quick.
"""

from __future__ import annotations

import collections
import json
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = (
    "ok", "http500", "http429", "stall_before_first_token", "stall_before_headers", "cut_midway",
    "cut_midway_clean", "malformed_sse", "invalid_json", "slow",
)
DEFAULT_ANSWER = "The quick brown fox jumps over the lazy dog."


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then closed), for 'connection refused'."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sample_for_schema(schema: dict | None):
    """A small value that satisfies simple JSON schemas (object/array/string/integer/number/boolean/enum)."""
    schema = schema or {}
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        names = list(props) + [n for n in schema.get("required", []) if n not in props]
        return {name: sample_for_schema(props.get(name, {"type": "string"})) for name in names}
    if kind == "array":
        count = schema.get("minItems", 0)
        return [sample_for_schema(schema.get("items", {"type": "string"})) for _ in range(count)]
    if kind == "string":
        return "x" * max(1, schema.get("minLength", 1))
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return max(1.5, schema.get("minimum", 1.5))
    if kind == "boolean":
        return True
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # the concurrency test opens dozens of connections at once
    fault: "FaultServer"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "KeelFaultServer/1.0"
    timeout = 15  # socket timeout: a handler never blocks forever on a silent client

    def log_message(self, format, *args):  # noqa: A002 - keep test output quiet
        pass

    # -- routing -----------------------------------------------------------------------------

    def do_GET(self):
        fault = self.server.fault
        if self.path.rstrip("/") == "/v1/models":
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "fault-server"} for m in fault.model_ids]
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self):
        fault = self.server.fault
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send_json(400, {"error": {"message": "request body is not JSON", "type": "invalid_request"}})
            return
        mode = fault._next_mode(body, {k.lower(): v for k, v in self.headers.items()})
        try:
            self._serve(mode, body)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout, OSError):
            self.close_connection = True  # the client went away (cancel, timeout): nothing more to do

    # -- behaviours ----------------------------------------------------------------------------

    def _serve(self, mode: str, body: dict) -> None:
        fault = self.server.fault
        stream = bool(body.get("stream"))
        if mode == "http500":
            self._send_json(500, {"error": {"message": "injected internal error", "type": "server_error"}})
            return
        if mode == "http429":
            headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            self._send_json(429, {"error": {"message": "injected rate limit", "type": "rate_limit_exceeded"}},
                            headers)
            return
        if mode == "stall_before_headers":
            fault._stop.wait(fault.stall_s)
            self.close_connection = True
            return

        pieces, finish = self._pieces(mode, body)
        if not stream:
            if mode in ("stall_before_first_token",):
                fault._stop.wait(fault.stall_s)
                self.close_connection = True
                return
            text = "".join(pieces)
            self._send_json(200, {
                "id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", "unknown"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": finish}],
                "usage": self._usage(body, len(pieces)),
            })
            return

        chunked = mode != "cut_midway_clean"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.flush()
        write = self._write_chunk if chunked else self._write_raw

        if mode == "stall_before_first_token":
            fault._stop.wait(fault.stall_s)
            self.close_connection = True
            return
        if mode == "malformed_sse":
            write(b"data: {this is not json at all\n\n")
            write(b"data: [DONE]\n\n")
            self._end_chunks()
            return

        cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        model = body.get("model", "unknown")

        def event(delta: dict, finish_reason=None, *, choices=True, usage=None) -> bytes:
            payload = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}] if choices else []}
            if usage is not None:
                payload["usage"] = usage
            return b"data: " + json.dumps(payload).encode() + b"\n\n"

        write(event({"role": "assistant", "content": ""}))
        cut = mode in ("cut_midway", "cut_midway_clean")
        for index, piece in enumerate(pieces):
            if cut and index >= fault.cut_after:
                self._abort()
                return
            if mode == "slow" or fault.token_delay_all:
                if fault._stop.wait(fault.token_delay):
                    self._abort()
                    return
            write(event({"content": piece}))
        if cut:  # the answer was shorter than cut_after: still never finish properly
            self._abort()
            return
        write(event({}, finish))
        if (body.get("stream_options") or {}).get("include_usage"):
            write(event({}, choices=False, usage=self._usage(body, len(pieces))))
        write(b"data: [DONE]\n\n")
        self._end_chunks()

    def _pieces(self, mode: str, body: dict) -> tuple[list[str], str]:
        fault = self.server.fault
        response_format = body.get("response_format") or {}
        if mode == "invalid_json":
            text = fault.invalid_json_text
        elif response_format.get("type") == "json_schema":
            schema = (response_format.get("json_schema") or {}).get("schema")
            text = json.dumps(sample_for_schema(schema))
        elif response_format.get("type") == "json_object":
            text = json.dumps({"answer": "x"})
        else:
            text = fault.answer
        if text.lstrip().startswith(("{", "[")):
            size = max(1, len(text) // 4)  # JSON streams in a few pieces, split anywhere
            pieces = [text[i:i + size] for i in range(0, len(text), size)]
        else:
            words = text.split(" ")
            pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
        finish = "stop"
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        if isinstance(limit, int) and 0 < limit < len(pieces):
            pieces, finish = pieces[:limit], "length"
        return pieces, finish

    def _usage(self, body: dict, completion_tokens: int) -> dict:
        if self.server.fault.prompt_tokens == "bytes":  # a byte-level tokenizer with no merges: its worst case
            prompt = sum(len(str(m.get("content", "")).encode("utf-8", "surrogatepass")) + 4
                         for m in body.get("messages", []))
        else:
            prompt = sum(len(str(m.get("content", "")).split()) + 4 for m in body.get("messages", []))
        return {"prompt_tokens": prompt, "completion_tokens": completion_tokens,
                "total_tokens": prompt + completion_tokens}

    # -- wire helpers --------------------------------------------------------------------------

    def _send_json(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _write_raw(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()

    def _end_chunks(self) -> None:
        if not self.close_connection:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    def _abort(self) -> None:
        """Close the connection now, in the middle of the body (no terminating chunk, no [DONE])."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class FaultServer:
    """A scripted OpenAI-compatible server on 127.0.0.1:<random port>; use as a context manager."""

    def __init__(self, *, answer: str = DEFAULT_ANSWER, default_mode: str = "ok", token_delay: float = 0.02,
                 retry_after: str | float | None = "0", stall_s: float = 10.0, cut_after: int = 3,
                 model_ids: tuple[str, ...] = ("m1", "m2")):
        self.answer = answer
        self.default_mode = default_mode
        self.token_delay = token_delay
        self.token_delay_all = False  # True: every streaming mode waits token_delay per chunk, not only "slow"
        self.retry_after = retry_after
        self.stall_s = stall_s
        self.cut_after = cut_after
        self.model_ids = model_ids
        self.invalid_json_text = "Sure! Here is the JSON you asked for: answer = x"
        self.prompt_tokens = "words"  # how usage counts prompt tokens: "words", or "bytes" (one per UTF-8 byte)
        self.requests: list[dict] = []  # every chat request body received, in order
        self.headers: list[dict] = []   # the matching request headers (lower-case names)
        self.served: list[str] = []     # the mode each of those requests got
        self._script: collections.deque[str] = collections.deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- scripting -------------------------------------------------------------------------

    def script(self, modes: list[str]) -> "FaultServer":
        """Queue modes for the next chat requests, in order; afterwards `default_mode` applies again."""
        for mode in modes:
            if mode not in MODES:
                raise ValueError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")
        with self._lock:
            self._script.extend(modes)
        return self

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()
            self.headers.clear()
            self.served.clear()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._script)

    def _next_mode(self, body: dict, headers: dict) -> str:
        with self._lock:
            mode = self._script.popleft() if self._script else self.default_mode
            if mode not in MODES:
                mode = "http500"
            self.requests.append(body)
            self.headers.append(headers)
            self.served.append(mode)
            return mode

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """The base URL an OpenAI client wants (ends in /v1)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "FaultServer":
        if self._httpd is not None:
            return self
        self._stop.clear()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.fault = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fault-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stop.set()  # wakes every stalled or slow handler
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd, self._thread = None, None

    def __enter__(self) -> "FaultServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
