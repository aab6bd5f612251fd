"""OpenAIProvider's raw `/v1/completions` path (a FIM prompt string), against a loopback server that records bodies."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core import config
from core.config import ProviderSettings
from core.llm import CancelToken, LLMRequest, OpenAIProvider
from core.llm._types import Usage


class _Completions(BaseHTTPRequestHandler):
    """Streams "a", "b" as legacy completion chunks, then a usage chunk; keeps every request body."""

    bodies: list[dict] = []

    def do_POST(self):  # noqa: N802 - the http.server hook's name
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        type(self).bodies.append(body)
        self.send_response(200 if self.path == "/v1/completions" else 404)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        chunks = [{"choices": [{"index": 0, "text": t, "finish_reason": f}]} for t, f in (("a", None), ("b", "stop"))]
        chunks.append({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}})
        for chunk in chunks:
            base = {"id": "c1", "object": "text_completion", "created": 0, "model": "m"}
            self.wfile.write(f"data: {json.dumps(base | chunk)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Completions.bodies = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Completions)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _provider(httpd) -> OpenAIProvider:
    url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    return OpenAIProvider("raw", ProviderSettings("raw", "openai", url, "k"), config.get_settings())


@pytest.mark.parametrize("stop, sent", [(None, None), ([], None), (["\n", "a", "b", "c", "d"], ["\n", "a", "b", "c"])])
def test_a_prompt_streams_from_v1_completions_with_at_most_four_stops(server, stop, sent):
    usage = Usage()
    request = LLMRequest(messages=[], prompt="def f(", max_tokens=8, temperature=0.0, stop=stop)
    assert "".join(_provider(server).stream("m", request, usage, CancelToken())) == "ab"
    assert (usage.tokens_in, usage.tokens_out, usage.finish_reason) == (7, 2, "stop")
    body = _Completions.bodies[-1]
    assert (body["model"], body["prompt"], body["max_tokens"], body["stream"]) == ("m", "def f(", 8, True)
    assert body.get("stop") == sent
    assert ("stop" in body) == (sent is not None)  # no stops: the key is left out, not sent empty or null
