"""The signed-in user as a core `Principal`, read from Streamlit's OIDC session; and sign-out that ends it.

Streamlit's session cookie is signed, not stored: sign-out only asks the browser to drop it, and a copy keeps
working for 30 days. So sign-out also records the session as revoked in SQL (`core.auth.end_session`), and
everything that accepts the cookie (pages, the playgrounds, /api/complete) checks that record.
"""

from __future__ import annotations

import json
import logging

import streamlit as st
from starlette.concurrency import run_in_threadpool

from core.auth import AuthError, Principal, end_session, principal_from_session
from ui.text import plain


def current_principal() -> Principal | None:
    if not st.user.is_logged_in:
        return None
    try:
        return principal_from_session(st.user.to_dict())
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


# -- the session cookie, for routes outside Streamlit's pages --------------------------------------------------

_log = logging.getLogger(__name__)
SIGN_OUT_PATH = "/auth/logout"  # Streamlit's sign-out route; st.logout() sends the browser there


def cookie_claims(request) -> dict | None:
    """The claims in a request's Streamlit session cookie (signature checked), or None."""
    try:
        from streamlit.web.server.starlette.starlette_auth_routes import _get_cookie_value_from_request
        from streamlit.web.server.starlette.starlette_server_config import USER_COOKIE_NAME

        raw = _get_cookie_value_from_request(request, USER_COOKIE_NAME)
        claims = json.loads(raw) if raw else None
    except (ValueError, TypeError, ImportError):
        return None
    if not isinstance(claims, dict) or not claims.get("is_logged_in", True):
        return None
    return claims


class RecordSignOut:
    """ASGI middleware: before Streamlit's sign-out route clears the browser's cookie, revoke its session in SQL."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("path", "").rstrip("/").endswith(SIGN_OUT_PATH):
            from starlette.requests import Request

            claims = cookie_claims(Request(scope))
            if claims:
                try:
                    await run_in_threadpool(end_session, claims)
                except Exception:  # the database is down: still sign the browser out, and say so in the log
                    _log.exception("sign-out could not record the revoked session of %s", claims.get("sub"))
        await self.app(scope, receive, send)
