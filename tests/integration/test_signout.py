"""Sign-out ends the session on the server (issue 13 item 11): Streamlit's session cookie is signed, not stored, so
a copy kept after sign-out used to keep working on /api/complete and /playground/config. A real `keel serve`
process, a real sign-in through the embedded OIDC provider over HTTP (no browser), then the copied cookie is
replayed after sign-out. The revocation record itself is tested on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from core import auth
from tests.conftest import free_port

pytestmark = pytest.mark.timeout(300)
REPO = Path(__file__).resolve().parents[2]
STATS = {"stats": True, "session": "signout-test"}  # an /api/complete call that needs no model


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("signout") / "keel"
    port, idp_port = free_port(), free_port()
    env = {**os.environ, "KEEL_HOME": str(home), "KEEL_PORT": str(port), "KEEL_DEV_IDP_PORT": str(idp_port),
           "KEEL_PUBLIC_URL": f"http://localhost:{port}", "HF_HUB_OFFLINE": "1"}
    env.pop("KEEL_DATABASE_URL", None)
    home.mkdir(parents=True)
    log = open(home / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "core.cli", "serve", "--port", str(port)], env=env, cwd=REPO,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {(home / 'server.log').read_text()[-3000:]}")
            try:
                if (httpx.get(f"{base}/_stcore/health", timeout=2).status_code == 200
                        and httpx.get(f"http://localhost:{idp_port}/.well-known/openid-configuration",
                                      timeout=2).status_code == 200):
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        yield {"url": base, "home": home, "cookie_secret": (home / ".cookie.secret").read_text().strip()}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _sign_in(server: dict, user: str) -> httpx.Client:
    """The browser's part of st.login(), over HTTP: Keel's login route → the provider's consent → the callback.

    The one step done here rather than by a page is the provider token st.login() puts in the login URL (a short
    HS256 JWT naming the provider, signed with the installation's cookie secret)."""
    from joserfc import jwt
    from joserfc.jwk import OctKey

    token = jwt.encode({"alg": "HS256"}, {"provider": "default", "exp": int(time.time()) + 120},
                       OctKey.import_key(server["cookie_secret"]))
    client = httpx.Client(base_url=server["url"], timeout=30, follow_redirects=False)
    login = client.get("/auth/login", params={"provider": token})
    assert login.status_code in (302, 303, 307), login.text[:500]
    # the provider lives on another port of the same host: keep its cookies out of the app's jar
    consent = httpx.post(login.headers["location"], data={"sub": user}, timeout=30, follow_redirects=False)
    assert consent.status_code == 302, consent.text[:500]
    callback = client.get(consent.headers["location"])
    assert callback.status_code in (302, 303, 307), callback.text[:500]
    assert any(c.name == "_streamlit_user" for c in client.cookies.jar), "no session cookie after sign-in"
    return client


def _replay(server: dict, cookies: dict[str, str]) -> httpx.Client:
    return httpx.Client(base_url=server["url"], timeout=30, cookies=cookies)


def test_a_session_cookie_stops_working_after_sign_out(app_server):
    browser = _sign_in(app_server, "alice.engineer@keel.dev")
    kept = {c.name: c.value for c in browser.cookies.jar}  # what a copied cookie (or a shared machine) keeps
    assert browser.post("/api/complete", json=STATS).status_code == 200
    assert browser.get("/playground/config").status_code == 200

    other = _sign_in(app_server, "alice.engineer@keel.dev")  # the same person signed in elsewhere

    signed_out = browser.get("/auth/logout")
    assert signed_out.status_code in (302, 303, 307)
    with _replay(app_server, kept) as replay:
        complete = replay.post("/api/complete", json=STATS)
        assert complete.status_code == 401, complete.text
        assert "missing credentials" in complete.json()["error"]
        assert replay.get("/playground/config").status_code in (401, 403)
        assert replay.get("/playground/code/config").status_code in (401, 403)
    # only that session ended: the other sign-in of the same user still works
    assert other.post("/api/complete", json=STATS).status_code == 200
    assert other.get("/playground/config").status_code == 200


def test_revocation_is_per_sign_in_and_recorded_in_sql(database):
    alice = {"iss": "http://idp", "aud": "keel-dev", "sub": "alice", "iat": 1_700_000_000, "exp": 1_700_000_600,
             "nonce": "n1", "email": "alice@keel.dev", "email_verified": True, "groups": ["engineering"]}
    again = {**alice, "iat": 1_700_000_100, "nonce": "n2"}  # the same user's next sign-in
    # a page reads st.user (no origin, tokens instead); a route reads the cookie: the same session key
    as_cookie = {**alice, "origin": "http://localhost:8501", "is_logged_in": True, "provider": "default"}
    as_page = {**alice, "is_logged_in": True, "provider": "default", "tokens": {}}
    assert auth.session_key(as_cookie) == auth.session_key(as_page) == auth.session_key(alice)
    assert auth.session_key(again) != auth.session_key(alice)
    assert auth.principal_from_session(as_cookie).sub == "alice"

    auth.end_session(as_cookie)
    auth.end_session(as_page)  # a second sign-out of the same session is a no-op
    with pytest.raises(auth.AuthError, match="signed out"):
        auth.principal_from_session(as_page)
    assert auth.session_revoked(alice) and not auth.session_revoked(again)
    assert auth.principal_from_session(again).sub == "alice"

    from sqlmodel import select

    from core import db
    from core.tables import RevokedSession

    with db.session() as s:
        rows = s.exec(select(RevokedSession)).all()
        assert [(r.sub, r.expires_at - r.revoked_at) for r in rows] == [("alice", auth.SESSION_COOKIE_MAX_AGE_S)]
        rows[0].expires_at = time.time() - 1  # its cookie has expired: the next sign-out prunes the row
        s.add(rows[0])
    auth.end_session(again)
    with db.session() as s:
        assert [r.key for r in s.exec(select(RevokedSession)).all()] == [auth.session_key(again)]
