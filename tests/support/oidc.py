"""Real ID tokens from the embedded dev identity provider, by the OIDC authorization-code flow over HTTP.

No browser: the provider's consent form is a POST to the authorization endpoint with the OAuth parameters
in the query string and the chosen subject in the form field `sub`; the 302 it answers carries the code,
which is exchanged at the token endpoint like any relying party does.
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlparse

import httpx

from core.idp import DEV_CLIENT_ID, DEV_CLIENT_SECRET

REDIRECT_PATH = "/oauth2callback"


def discover(issuer_url: str) -> dict:
    response = httpx.get(f"{issuer_url.rstrip('/')}/.well-known/openid-configuration", timeout=5)
    response.raise_for_status()
    return response.json()


def authorization_code_flow(issuer_url: str, sub: str, *, client_id: str = DEV_CLIENT_ID,
                            client_secret: str = DEV_CLIENT_SECRET, app_port: int = 8501,
                            scope: str = "openid email profile") -> dict:
    """Sign in as `sub` and return the token response (id_token, access_token, …)."""
    meta = discover(issuer_url)
    redirect_uri = f"http://localhost:{app_port}{REDIRECT_PATH}"
    state = secrets.token_urlsafe(12)
    with httpx.Client(timeout=5, follow_redirects=False) as client:
        consent = client.post(
            meta["authorization_endpoint"],
            params={"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code",
                    "scope": scope, "state": state},
            data={"sub": sub},
        )
        if consent.status_code != 302:
            raise AssertionError(f"authorization endpoint answered {consent.status_code}: {consent.text[:500]}")
        location = urlparse(consent.headers["location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == redirect_uri, location
        query = parse_qs(location.query)
        assert query.get("state") == [state], "the provider must echo the state"
        code = query["code"][0]
        token = client.post(
            meta["token_endpoint"],
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                  "client_id": client_id, "client_secret": client_secret},
        )
        if token.status_code != 200:
            raise AssertionError(f"token endpoint answered {token.status_code}: {token.text[:500]}")
        return token.json()


def id_token_for(issuer_url: str, sub: str, **kwargs) -> str:
    return authorization_code_flow(issuer_url, sub, **kwargs)["id_token"]


def set_user_claims(issuer_url: str, sub: str, claims: dict) -> None:
    """Replace the claims the provider puts in `sub`'s next ID tokens (oidc-provider-mock's PUT /users/<sub>)."""
    response = httpx.put(f"{issuer_url.rstrip('/')}/users/{sub}", json=claims, timeout=5)
    assert response.status_code == 204, response.text
