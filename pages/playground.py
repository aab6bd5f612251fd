"""Model playground (at /model-playground): the Gradio app mounted at /playground, framed here on the same origin."""

import streamlit as st

from ui.session import require_principal

require_principal("admin", "developer")
st.title("Model playground")
st.caption("Chat with any tier, or compare two tiers side by side. Every call is logged with feature `playground`.")
st.iframe("/playground/", height=860)  # the chat, its message box and Send fit without scrolling
