"""The Gradio model playground mounted at /playground: chat with any tier, or two tiers side by side."""

from __future__ import annotations

import json

import gradio as gr

from core.auth import AuthError, principal_from_claims
from core.llm import LLMError, LLMRequest, get_gateway

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
            yield reply
        result = stream.result
        yield reply + f"\n\n*{result.provider}/{result.model} · {result.tokens_out} tokens · " \
                      f"TTFT {result.ttft_ms or 0:.0f} ms · {result.latency_ms:.0f} ms*"
    except LLMError as exc:
        yield (reply + "\n\n" if reply else "") + f"⚠️ {exc}"


def _user_of(request: gr.Request | None) -> str | None:
    return getattr(request, "username", None) if request is not None else None


def build_blocks() -> gr.Blocks:
    with gr.Blocks(title="Keel playground") as blocks:
        gr.Markdown("### Keel model playground\nEvery call goes through Keel's gateway and is logged "
                    "(feature `playground`).")
        with gr.Tab("Chat"):
            model = gr.Dropdown(choices=_tiers(), value="capable", label="Tier or model")
            chat = gr.Chatbot(label="Conversation", height=420)
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


def streamlit_user(request) -> str | None:
    """Gradio auth dependency: the signed-in Streamlit user (developer or admin) or None (→ 401)."""
    try:
        from streamlit.web.server.starlette.starlette_auth_routes import _get_cookie_value_from_request
        from streamlit.web.server.starlette.starlette_server_config import USER_COOKIE_NAME

        raw = _get_cookie_value_from_request(request, USER_COOKIE_NAME)
        if not raw:
            return None
        claims = json.loads(raw)
        if not claims.get("is_logged_in", True):
            return None
        principal = principal_from_claims(claims)
    except (AuthError, ValueError, TypeError, ImportError):
        return None
    return principal.sub if principal.has_role("admin", "developer") else None


def mount_route():
    """A Starlette `Mount` for /playground plus the FastAPI host whose lifespan Gradio needs."""
    from fastapi import FastAPI

    host = FastAPI()
    gr.mount_gradio_app(host, build_blocks(), path="/playground", auth_dependency=streamlit_user,
                        footer_links=[], run_history=False, show_error=True)
    mount = next(r for r in host.routes if getattr(r, "path", None) == "/playground")
    return mount, host
