"""Small controls shared by the ops pages."""

from __future__ import annotations

import streamlit as st

from core.observe import Window


def window_picker(windows: dict[str, int], default: int = 0) -> Window:
    """A 'Window' select (label → hours) with a Refresh button beside it; returns the chosen Window."""
    top = st.columns([2, 1, 5])
    label = top[0].selectbox("Window", list(windows), index=default)
    if top[1].button("Refresh", icon=":material/refresh:"):
        st.rerun()
    return Window.last(windows[label])
