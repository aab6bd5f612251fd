"""The app frame: sign-in screen, role-filtered navigation in sections, and the identity sidebar."""

from __future__ import annotations

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from core.auth import secrets_auth_section
from core.idp import DEV_USERS
from ui.session import current_principal
from ui.text import plain

# (section, page file, title, icon, roles allowed; empty = every signed-in user)
PAGES = [
    ("Keel", "pages/home.py", "Home", ":material/home:", ()),
    ("Work", "pages/workspace.py", "Workspace", ":material/edit_note:", ()),
    ("Work", "pages/completion.py", "Code completion", ":material/code:", ()),
    ("Work", "pages/pr_review.py", "PR review", ":material/difference:", ("developer", "admin")),
    ("Work", "pages/search.py", "Document search", ":material/manage_search:", ()),
    ("Support", "pages/support_chat.py", "Support chat", ":material/chat:", ()),
    ("Support", "pages/handoff_console.py", "Handoff console", ":material/support_agent:", ("support_agent", "admin")),
    ("Support", "pages/csat.py", "CSAT", ":material/sentiment_satisfied:", ("support_agent", "admin")),
    ("Operate", "pages/dashboard.py", "Dashboard", ":material/monitoring:", ("admin", "developer")),
    ("Operate", "pages/analysis.py", "Cost & drift", ":material/insights:", ("admin", "developer")),
    ("Operate", "pages/evals.py", "Evals", ":material/fact_check:", ("admin", "developer")),
    ("Operate", "pages/review_queue.py", "Review queue", ":material/rate_review:", ("admin", "developer")),
    ("Operate", "pages/playground.py", "Model playground", ":material/science:", ("admin", "developer")),
    ("Admin", "pages/admin.py", "Prices & API keys", ":material/admin_panel_settings:", ("admin",)),
    ("Admin", "pages/search_admin.py", "Search admin", ":material/folder_managed:", ("admin",)),
]


# Pages whose default address (the file name) would collide with a mounted app: /playground is Gradio's.
URL_PATHS = {"pages/playground.py": "model-playground"}


def visible_pages(principal) -> dict[str, list]:
    """The pages this person may use, by section; the others are registered hidden, so opening one by its address
    shows the page's own "this page is for …" message instead of silently landing on Home."""
    sections: dict[str, list] = {}
    hidden: list[StreamlitPage] = []
    for section, path, title, icon, roles in PAGES:
        allowed = not roles or principal.has_role(*roles)
        page = st.Page(path, title=title, icon=icon, default=(path == "pages/home.py"), url_path=URL_PATHS.get(path),
                       visibility="visible" if allowed else "hidden")
        (sections.setdefault(section, []) if allowed else hidden).append(page)
    sections[next(iter(sections))].extend(hidden)  # hidden pages draw nothing in the menu
    return sections


def login_screen() -> None:
    st.title("Keel")
    st.caption("Run LLM features in production: one core, five systems, every call logged.")
    dev = not secrets_auth_section()
    with st.container(border=True):
        if dev:
            st.markdown("#### Sign in with the **dev identity provider**")
            st.info(
                "This installation uses Keel's embedded development OIDC provider (oidc-provider-mock, "
                "loopback only). Pick one of the demo users on the next screen. Configure `[auth]` in "
                "`.streamlit/secrets.toml` to use your company's provider instead.",
                icon=":material/developer_mode:",
            )
        else:
            st.markdown("#### Sign in with your company account")
        if st.button("Sign in", type="primary", icon=":material/login:"):
            st.login()
    if dev:
        st.markdown("##### Demo users")
        st.table(
            [{"user": u.sub, "name": u.name, "role": u.title, "groups": ", ".join(u.groups),
              "clearance": u.clearance} for u in DEV_USERS],
        )


def sidebar(principal) -> None:
    with st.sidebar:
        st.markdown(f"**{plain(principal.display_name)}**  \n{plain(principal.email)}")
        st.caption(
            f"Groups: {', '.join(sorted(principal.groups))}  \n"
            f"Clearance: {principal.clearance} ({principal.clearance_name})  \n"
            f"Roles: {', '.join(sorted(principal.roles))}"
        )
        if st.button("Sign out", icon=":material/logout:"):
            st.logout()


def run() -> None:
    st.set_page_config(page_title="Keel", page_icon=":material/sailing:", layout="wide")
    principal = current_principal()
    if principal is None:
        st.navigation([st.Page(login_screen, title="Sign in", icon=":material/login:")]).run()
        return
    sidebar(principal)
    st.navigation(visible_pages(principal), expanded=True).run()  # every page in view, no "View more"
