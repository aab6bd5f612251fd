"""Home: who you are, whether Keel is healthy, and a quick streamed answer from any tier."""

from typing import cast

import streamlit as st

from core import health
from core.llm import Completion, LLMError, LLMRequest, get_gateway
from core.prompts import load, remove_scaffolding
from ui.feedback import failure_note, working
from ui.session import require_principal
from ui.text import model_markdown, plain

principal = require_principal()
st.title(f"Welcome, {plain((principal.display_name.split() or [''])[0])}")
st.caption("Keel runs LLM features side by side on one gateway; every call below lands in the request log.")

left, right = st.columns([3, 2])
# The chat runs first: a click on Send gets its Working… line before the health checks below are measured.
with left, st.container(border=True):
    st.markdown("##### Ask the model")
    tier = st.segmented_control("Tier", options=list(get_gateway().settings.tiers), default="fast")
    question = st.text_area("Message", placeholder="e.g. Write a haiku about shipping on Fridays", max_chars=4000)
    if st.button("Send", type="primary", icon=":material/send:"):
        if not question.strip():
            st.error("Type a message first: an empty message is not sent to the model.")
        else:
            prompt = load("playground/chat")
            request = LLMRequest.from_prompt(prompt, {"message": question}, tier=tier or "fast", feature="home",
                                             task="quick_chat", user=principal.sub)
            box = st.empty()
            working(box)  # from the click to the first token; the streamed answer replaces it
            try:
                stream = get_gateway().stream(request)
                reply = ""
                for chunk in stream:  # the whole reply so far, redrawn: a fallback's reset restarts it
                    reply = "" if chunk.reset else reply + chunk.text
                    shown = remove_scaffolding(reply).strip()  # a small model may echo its prompt's <data> tags
                    if shown:
                        box.markdown(model_markdown(shown))
                if not remove_scaffolding(reply).strip():
                    box.caption("The model returned no text this time. Please try again.")
                result = cast(Completion, stream.result)  # the stream ran to its end without an error: it is set
                st.caption(f"{result.provider}/{result.model} · {result.tokens_out} tokens · "
                           f"first token {result.ttft_ms or 0:.0f} ms · total {result.latency_ms:.0f} ms · "
                           f"request {result.request_id[:8]}")
            except LLMError:
                box.empty()
                st.error(failure_note(kept=False))

with right, st.container(border=True):
    st.markdown("##### System health")
    report = health.check()
    for name, result in report["checks"].items():
        mark = ":green[●]" if result["ok"] else ":red[●]"
        detail = result.get("error") or f"{result['ms']} ms"
        st.markdown(f"{mark} **{name}** — {detail}")
