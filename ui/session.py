"""The signed-in user as a core `Principal`, read from Streamlit's OIDC session."""

from __future__ import annotations

import streamlit as st

from core.auth import AuthError, Principal, principal_from_claims
from ui.text import plain


def current_principal() -> Principal | None:
    if not st.user.is_logged_in:
        return None
    try:
        return principal_from_claims(st.user.to_dict())
    except AuthError:
        return None


def require_principal(*roles: str) -> Principal:
    """Stop the page unless someone with one of `roles` (any role when empty) is signed in."""
    principal = current_principal()
    if principal is None:
        st.warning("Please sign in to use this page.")
        if st.button("Sign in", type="primary"):
            st.login()
        st.stop()
    if roles and not principal.has_role(*roles):
        st.error(f"This page is for: {', '.join(roles)}. You are signed in as {plain(principal.display_name)}.")
        st.stop()
    return principal
