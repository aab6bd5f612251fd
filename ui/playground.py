"""The Gradio playgrounds, one origin with the Streamlit UI:

- `/playground/code/`: the code completion playground (every signed-in user): editor tabs of a demo project,
  ghost-text suggestions from `/api/complete` fetched by a small script, Tab or a button to accept, and a live
  panel of latency, cache hits, cancellations and acceptance;
- `/playground/`: the model chat playground (developers and admins): chat with any tier, or two side by side.

Both read the signed-in user from Streamlit's session cookie; so does `/api/complete` for the playground.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import gradio as gr
from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Match, NoMatchFound

from core.auth import AuthError, Principal, principal_from_session
from core.config import REPO_ROOT
from core.llm import Completion, LLMError, LLMRequest, get_gateway
from core.prompts import remove_scaffolding
from ui.session import cookie_claims

MAX_MESSAGE_CHARS = 8000


def _tiers() -> list[str]:
    return get_gateway().model_ids()


def _request(model: str, history: list[dict], user: str | None) -> LLMRequest:
    gateway = get_gateway()
    tier, target = (model, None) if model in gateway.settings.tiers else ("capable", model)
    messages = [{"role": m["role"], "content": _text(m["content"])} for m in history]
    return LLMRequest(messages=messages, tier=tier, target=target, feature="playground", task="chat",
                      user=user, max_tokens=256)


def _text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # Gradio 6 may hand back [{"type": "text", "text": ...}]
        return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
    return str(content)


def _stream_reply(model: str, history: list[dict], user: str | None):
    """Yield the growing assistant message; errors become a visible message, never a silent stop."""
    reply = ""
    try:
        stream = get_gateway().stream(_request(model, history, user))
        for chunk in stream:
            reply = "" if chunk.reset else reply + chunk.text
            yield remove_scaffolding(reply)  # a small model may echo its prompt's <data> tags
        reply = remove_scaffolding(reply)
        result = cast(Completion, stream.result)  # the stream ran to its end without an error, and that sets it
        yield reply + f"\n\n*{result.provider}/{result.model} · {result.tokens_out} tokens · " \
                      f"TTFT {result.ttft_ms or 0:.0f} ms · {result.latency_ms:.0f} ms*"
    except LLMError as exc:  # the request log (Dashboard) has the detail under this id
        note = ("The model stopped before it finished" if reply else "The model could not answer just now") + \
            f" (busy or too slow); try again. Request {(exc.request_id or '?')[:8]} is in the Dashboard's log."
        yield (reply + "\n\n" if reply else "") + f"⚠️ {note}"


def _user_of(request: gr.Request | None) -> str | None:
    return getattr(request, "username", None) if request is not None else None


def build_blocks() -> gr.Blocks:
    with gr.Blocks(title="Keel playground") as blocks:
        gr.Markdown("### Keel model playground\nEvery call goes through Keel's gateway and is logged "
                    "(feature `playground`).")
        with gr.Tab("Chat"):
            model = gr.Dropdown(choices=_tiers(), value="capable", label="Tier or model")
            chat = gr.Chatbot(label="Conversation", height=300)  # the message box stays in a 900 px window
            box = gr.Textbox(label="Message", placeholder="Type and press Enter", max_lines=6)
            clear = gr.Button("Clear")

            def add_user(message: str, history: list):
                message = (message or "").strip()
                if not message:
                    raise gr.Error("Type a message first.")
                if len(message) > MAX_MESSAGE_CHARS:
                    raise gr.Error(f"Messages are limited to {MAX_MESSAGE_CHARS:,} characters.")
                return "", (history or []) + [{"role": "user", "content": message}]

            def bot(model_id: str, history: list, request: gr.Request):
                history = history or []
                for reply in _stream_reply(model_id, history, _user_of(request)):
                    yield history + [{"role": "assistant", "content": reply}]

            box.submit(add_user, [box, chat], [box, chat], queue=False).then(bot, [model, chat], chat)
            clear.click(lambda: [], None, chat, queue=False)

        with gr.Tab("Compare tiers"):
            with gr.Row():
                left_model = gr.Dropdown(choices=_tiers(), value="fast", label="Left")
                right_model = gr.Dropdown(choices=_tiers(), value="capable", label="Right")
            prompt = gr.Textbox(label="Prompt", placeholder="One prompt, two tiers", max_lines=6)
            run = gr.Button("Run both", variant="primary")
            with gr.Row():
                with gr.Column(variant="panel"):
                    gr.Markdown("**Left answer**")
                    left_out = gr.Markdown(elem_id="left-answer")
                with gr.Column(variant="panel"):
                    gr.Markdown("**Right answer**")
                    right_out = gr.Markdown(elem_id="right-answer")

            def side(model_id: str, text: str, request: gr.Request):
                text = (text or "").strip()
                if not text:
                    yield "⚠️ Type a prompt first."
                    return
                yield from _stream_reply(model_id, [{"role": "user", "content": text[:MAX_MESSAGE_CHARS]}],
                                         _user_of(request))

            run.click(side, [left_model, prompt], left_out)
            run.click(side, [right_model, prompt], right_out)
    blocks.queue(default_concurrency_limit=4)
    return blocks


def streamlit_principal(request) -> Principal | None:
    """The signed-in Streamlit user from the session cookie, or None (also once that session signed out)."""
    claims = cookie_claims(request)
    if claims is None:
        return None
    try:
        return principal_from_session(claims)
    except AuthError:
        return None


def streamlit_user(request) -> str | None:
    """Gradio auth dependency of the chat playground: a signed-in developer or admin, or None (→ 401)."""
    principal = streamlit_principal(request)
    return principal.sub if principal is not None and principal.has_role("admin", "developer") else None


def any_streamlit_user(request) -> str | None:
    """Gradio auth dependency of the completion playground: any signed-in user, or None (→ 401)."""
    principal = streamlit_principal(request)
    return principal.sub if principal is not None else None


# -- code completion playground ------------------------------------------------------------------------

DEMO_PROJECT = REPO_ROOT / "data" / "completion" / "project"
DEMO_TABS = ("src/inventory.py", "src/money.py", "src/cart.ts", "src/cart.test.ts")
_CODE_LANGUAGES = {".py": "python", ".ts": "typescript", ".js": "javascript", ".md": "markdown"}
_COMPLETION_JS = Path(__file__).with_name("static") / "completion.js"
_COMPLETION_CSS = """
.keel-ghost { position: absolute; z-index: 5; pointer-events: none; white-space: pre; color: #8a8f98;
  font-style: italic; font-family: var(--font-mono, monospace); font-size: inherit;
  background: rgba(250, 250, 250, 0.85); }
.cm-scroller { position: relative; }
.keel-kpis { display: grid; grid-template-columns: 1fr 1fr; gap: 10px; }
.keel-kpis div { border: 1px solid var(--border-color-primary, #e5e7eb); border-radius: 8px; padding: 8px 10px; }
.keel-kpis b { display: block; font-size: 1.35em; }
.keel-kpis span { font-size: 0.85em; opacity: 0.75; }
.keel-status { margin-top: 10px; font-size: 0.85em; opacity: 0.8; min-height: 1.2em; }
"""


def demo_files() -> list[dict]:
    """The demo project's tabs: path, Gradio language and text (read-only data shipped in the repo)."""
    files = []
    for rel in DEMO_TABS:
        path = DEMO_PROJECT / rel
        files.append({"path": rel, "language": _CODE_LANGUAGES.get(path.suffix),
                      "text": path.read_text(encoding="utf-8")})
    return files


def completion_head() -> str:
    """The client script and the demo files it knows (for context), embedded in the page's <head>."""
    data = json.dumps(demo_files()).replace("</", "<\\/")
    script = _COMPLETION_JS.read_text(encoding="utf-8")
    return (f'<script type="application/json" id="keel-files-json">{data}</script>'
            f"<script>{script}</script>")


def build_completion_blocks() -> gr.Blocks:
    with gr.Blocks(title="Keel code completion") as blocks:
        gr.Markdown("### Code completion playground\nType in a file: suggestions appear as grey ghost text. "
                    "**Tab** or **Accept** takes one, **Esc** dismisses it. Every suggestion goes through "
                    "`/api/complete` and Keel's gateway (feature `completion`).")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                with gr.Tabs():
                    for index, file in enumerate(demo_files()):
                        with gr.Tab(Path(file["path"]).name):
                            gr.Code(value=file["text"], language=file["language"], label=file["path"],
                                    interactive=True, lines=20, max_lines=20, elem_id=f"keel-code-{index}",
                                    wrap_lines=True)  # long lines wrap instead of running off the editor
            with gr.Column(scale=1, min_width=260):
                gr.Button("Accept suggestion (Tab)", elem_id="keel-accept", variant="primary")
                gr.HTML(
                    '<div id="keel-stats"><h4 style="margin:0 0 8px">This session</h4>'
                    '<div id="keel-stats-body"></div>'
                    '<label style="display:block;margin-top:12px;font-size:0.9em">Debounce '
                    '<select id="keel-debounce"><option value="">adaptive (75 ms to start)</option>'
                    '<option value="0">0 ms</option><option value="75">75 ms</option>'
                    '<option value="150">150 ms</option><option value="350">350 ms</option></select></label>'
                    '<p style="font-size:0.8em;opacity:0.7;margin-top:10px">Latency is measured in this browser, '
                    "from the keystroke to the first visible character of the suggestion.</p></div>")
    return blocks


# The Keel page that frames each Gradio app. The pages live at other paths than the mounts, so a reload of a
# page never lands in bare Gradio.
PLAYGROUND_PAGE = "/model-playground"
PAGE_FOR_MOUNT = {"/playground": PLAYGROUND_PAGE, "/playground/code": "/completion"}


class PrefixRoute(BaseRoute):
    """Sends every request under `prefix` to `app` (which routes on the full path), and nothing else."""

    def __init__(self, prefix: str, app):
        self.prefix, self.app = prefix, app

    def matches(self, scope):
        path = scope.get("path", "")
        if scope["type"] in ("http", "websocket") and (path == self.prefix or path.startswith(self.prefix + "/")):
            return Match.FULL, {}
        return Match.NONE, {}

    def url_path_for(self, name, /, **params):
        raise NoMatchFound(name, params)

    async def handle(self, scope, receive, send):
        # A person who opens or reloads a playground address in the browser tab itself (not in Keel's frame) gets
        # the Keel page that frames it: its shell, its sign-in, and a plain "not for you" instead of raw JSON.
        if scope["type"] == "http" and scope.get("method") == "GET":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            page = PAGE_FOR_MOUNT.get(scope.get("path", "").rstrip("/"))
            if page and headers.get("sec-fetch-dest") == "document":
                await RedirectResponse(page, status_code=303)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def mount_route():
    """One route for everything under /playground plus the FastAPI host whose lifespan Gradio needs."""
    from fastapi import FastAPI

    from core.api import register_cookie_authenticator

    register_cookie_authenticator(streamlit_principal)  # /api/complete accepts the playground's session
    host = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    gr.mount_gradio_app(host, build_completion_blocks(), path="/playground/code", auth_dependency=any_streamlit_user,
                        footer_links=[], run_history=False, show_error=True, head=completion_head(),
                        css=_COMPLETION_CSS)
    gr.mount_gradio_app(host, build_blocks(), path="/playground", auth_dependency=streamlit_user,
                        footer_links=[], run_history=False, show_error=True)
    return PrefixRoute("/playground", host), host
