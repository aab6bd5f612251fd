"""Says on a page how much of what it shows is demo data, and lets an admin remove all of it (with confirmation)."""

from __future__ import annotations

import streamlit as st

from core.auth import Principal


def demo_data_panel(principal: Principal) -> None:
    """A note naming the demo share; for an admin, a Remove demo data button that asks before deleting."""
    from core.demo import clear, demo_counts

    counts = demo_counts()
    if not any(counts.values()):
        return
    note, action = st.columns([4, 1], vertical_alignment="center")
    note.info(f"Includes demo data: {counts['request_log']:,} sample calls ({counts['review_item']:,} in the review "
              f"queue) and {counts['support_conversations']:,} sample support conversations, marked **demo**.",
              icon=":material/science:")
    if not principal.has_role("admin"):
        return
    with action.popover("Remove demo data", icon=":material/delete:", width="stretch"):
        st.write("Delete every demo call, its review items and the sample support history? Real calls stay. "
                 "This cannot be undone.")
        if st.button("Yes, remove demo data", type="primary", key="demo_clear_confirm"):
            with st.spinner("Removing demo data…"):
                removed = clear()
            st.session_state["demo_cleared"] = removed
            st.rerun()


def has_demo(kind: str = "request_log") -> bool:
    """Whether any demo rows of this kind (request_log, review_item, support_conversations) exist."""
    from core.demo import demo_counts

    return demo_counts()[kind] > 0


def label_demo(fig, demo: bool):
    """A chart drawn partly from demo rows says so under its title, so sample data never passes for real."""
    if demo:
        title = fig.layout.title.text or ""
        top = fig.layout.margin.t if fig.layout.margin.t is not None else 40
        fig.update_layout(title=dict(text=f"{title}<br><sup>includes demo data</sup>"), margin=dict(t=top + 18))
    return fig


def demo_cleared_notice() -> None:
    removed = st.session_state.pop("demo_cleared", None)
    if removed is not None:
        st.success(f"Removed {removed['request_log']:,} demo calls, {removed['review_item']:,} review items and "
                   f"{removed['support_conversations']:,} sample conversations.", icon=":material/check:")
