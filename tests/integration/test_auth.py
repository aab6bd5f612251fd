"""Identity end to end: real ID tokens from the embedded dev OIDC provider, forged and broken tokens, the
provider's network exposure, and the API-key lifecycle on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
import time

import httpx
import psutil
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import text
from sqlmodel import select
from starlette.applications import Starlette

from core import auth, config, db
from core.api import routes
from core.auth import AuthError, principal_from_api_key, principal_from_bearer, principal_from_id_token
from core.idp import DEV_CLIENT_ID, DEV_USERS, DevIdentityProvider
from core.tables import ApiKey
from tests.conftest import free_port
from tests.support.fault_server import closed_port
from tests.support.live_server import LiveServer
from tests.support.oidc import authorization_code_flow, discover, id_token_for, set_user_claims

pytestmark = pytest.mark.timeout(60)

USERS = {u.sub: u for u in DEV_USERS}
ENGINEER, INTERN, EXEC = "alice.engineer@keel.dev", "milo.intern@keel.dev", "erin.exec@keel.dev"
EXPECTED_ROLES = {
    "alice.engineer@keel.dev": {"member", "developer"},
    "sam.support@keel.dev": {"member", "support_agent"},
    "hana.hr@keel.dev": {"member", "hr"},
    "milo.intern@keel.dev": {"member"},
    "erin.exec@keel.dev": {"member", "admin"},
    "ivan.admin@keel.dev": {"member", "admin", "developer"},
}


# -- the provider and tokens -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def idp():
    provider = DevIdentityProvider(port=free_port()).start()
    try:
        yield provider
    finally:
        provider.stop()


@pytest.fixture(scope="module")
def issuer(idp) -> str:
    return f"http://localhost:{idp.port}"


@pytest.fixture(scope="module")
def tokens(issuer):
    """ID tokens per demo user, each from one real authorization-code flow (cached for the module)."""
    cache: dict[str, str] = {}

    def get(sub: str) -> str:
        if sub not in cache:
            cache[sub] = id_token_for(issuer, sub)
        return cache[sub]

    return get


@pytest.fixture
def idp_env(idp, monkeypatch):
    """Point Keel's settings at this provider; forget cached JWKS from other providers/ports."""
    if auth.secrets_auth_section():
        pytest.skip(".streamlit/secrets.toml configures another OIDC provider")
    monkeypatch.setenv("KEEL_DEV_IDP_PORT", str(idp.port))
    config.reset_settings()
    auth._jwks.cache_clear()  # keyed by URL: a provider restarted on a reused port would have a new key
    yield idp
    auth._jwks.cache_clear()
    config.reset_settings()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _parts(token: str) -> tuple[dict, dict, str]:
    header, payload, signature = token.split(".")
    return json.loads(_unb64(header)), json.loads(_unb64(payload)), signature


def _provider_keys(issuer: str) -> KeySet:
    return KeySet.import_key_set(httpx.get(discover(issuer)["jwks_uri"], timeout=5).json())


def _verified_claims(issuer: str, token: str) -> dict:
    """Claims of a token whose signature the provider's own key verifies (no claim checks)."""
    return jwt.decode(token, _provider_keys(issuer), algorithms=["RS256"]).claims


def _claims_for(sub: str, **overrides) -> dict:
    now = int(time.time())
    return {"iss": "", "aud": DEV_CLIENT_ID, "sub": sub, "iat": now, "exp": now + 600,
            **USERS[sub].claims, **overrides}


# -- real tokens ---------------------------------------------------------------------------------------------


def test_the_code_flow_returns_a_signed_id_token_for_the_chosen_user(issuer):
    response = authorization_code_flow(issuer, ENGINEER)
    assert response["token_type"].lower() == "bearer" and response["access_token"]
    header, claims, _ = _parts(response["id_token"])
    assert header["alg"] == "RS256"
    verified = _verified_claims(issuer, response["id_token"])
    assert verified == claims
    assert claims["iss"] == issuer
    assert claims["sub"] == ENGINEER and claims["email"] == ENGINEER
    assert DEV_CLIENT_ID in (claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]])
    assert claims["groups"] == ["engineering"] and claims["clearance"] == 2
    assert claims["exp"] > time.time() + 60


@pytest.mark.parametrize("sub", list(EXPECTED_ROLES))
def test_principal_from_a_real_id_token(sub, tokens, idp_env):
    user = USERS[sub]
    principal = principal_from_id_token(tokens(sub))
    assert principal.sub == sub and principal.email == sub and principal.name == user.name
    assert principal.groups == frozenset(user.groups) | {"all-staff"}
    assert principal.clearance == user.clearance
    assert principal.roles == frozenset(EXPECTED_ROLES[sub])
    assert principal.workspace is None
    assert principal_from_bearer(f"Bearer {tokens(sub)}") == principal


def test_engineer_and_intern_differ_where_it_matters(tokens, idp_env):
    engineer, intern = principal_from_id_token(tokens(ENGINEER)), principal_from_id_token(tokens(INTERN))
    assert (engineer.clearance, intern.clearance) == (2, 0)
    assert engineer.has_role("developer") and not intern.has_role("developer", "admin")
    assert "engineering" in engineer.groups and "engineering" not in intern.groups
    assert intern.groups == {"marketing", "all-staff"}
    assert intern.clearance_name == "public" and engineer.clearance_name == "confidential"


# -- /api/whoami over HTTP -------------------------------------------------------------------------------------


@pytest.fixture
def whoami(idp_env, keel_home):
    with LiveServer(Starlette(routes=routes)) as live:
        yield f"{live.url}/api/whoami"


def test_whoami_with_an_id_token_over_http(whoami, tokens):
    response = httpx.get(whoami, headers={"Authorization": f"Bearer {tokens(EXEC)}"}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "sub": EXEC, "email": EXEC, "name": "Erin Walsh", "groups": ["all-staff", "executives", "people-managers"],
        "clearance": 3, "roles": ["admin", "member"], "workspace": None,
    }


def test_whoami_with_an_api_key_and_without_credentials(whoami):
    auth.ensure_workspace("whoami-ws")
    key, record = auth.create_api_key("whoami-ws", "whoami")
    response = httpx.get(whoami, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["sub"] == f"apikey:{record.id}" and body["workspace"] == "whoami-ws"
    assert body["roles"] == ["api"] and body["clearance"] == 0 and body["groups"] == ["all-staff"]

    missing = httpx.get(whoami, timeout=10)
    assert missing.status_code == 401 and "missing credentials" in missing.json()["error"]


def test_whoami_rejects_a_tampered_token_over_http(whoami, tokens):
    token = _flip_signature_char(tokens(INTERN))
    response = httpx.get(whoami, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 401
    assert "invalid ID token" in response.json()["error"]
    assert INTERN not in response.text


# -- broken and forged tokens ------------------------------------------------------------------------------------


def _flip_signature_char(token: str) -> str:
    header, payload, signature = token.split(".")
    i = len(signature) // 2  # a middle character: all 6 bits are signature bits
    signature = signature[:i] + ("A" if signature[i] != "A" else "B") + signature[i + 1:]
    return f"{header}.{payload}.{signature}"


def _reject(token, *fragments: str) -> AuthError:
    with pytest.raises(AuthError) as info:
        principal_from_id_token(token)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)
    return info.value


def test_a_flipped_signature_character_is_rejected(tokens, idp_env):
    token = tokens(ENGINEER)
    assert principal_from_id_token(token).sub == ENGINEER
    _reject(_flip_signature_char(token), "invalid ID token")


def test_raising_your_own_clearance_in_the_payload_is_rejected(tokens, idp_env):
    header, payload, signature = tokens(INTERN).split(".")
    claims = json.loads(_unb64(payload))
    claims.update(clearance=3, groups=["executives", "it-admins"])
    forged = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    _reject(forged, "invalid ID token")


def test_a_token_signed_with_another_key_is_rejected(issuer, idp_env):
    real_kid = _parts(id_token_for(issuer, ENGINEER))[0].get("kid")
    attacker = RSAKey.generate_key(2048)
    claims = _claims_for(EXEC, iss=issuer)
    header = {"alg": "RS256", **({"kid": real_kid} if real_kid else {})}
    forged = jwt.encode(header, claims, attacker)
    assert jwt.decode(forged, attacker).claims["clearance"] == 3  # a well-formed token, just not the IdP's
    _reject(forged, "invalid ID token")


def test_unsigned_and_hmac_confused_tokens_are_rejected(issuer, idp_env):
    claims = _b64(json.dumps(_claims_for(EXEC, iss=issuer)).encode())
    unsigned = f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{claims}."
    _reject(unsigned, "invalid ID token")
    # RS256 → HS256 confusion: an HMAC keyed with the provider's *public* key must not verify
    public_pem = next(iter(_provider_keys(issuer))).as_pem(private=False)
    signing_input = f"{_b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{claims}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    _reject(f"{signing_input}.{_b64(mac)}", "invalid ID token")


@pytest.mark.parametrize("token", ["", None, "not-a-jwt", "a.b.c", "e30.e30.", "x" * 5000])
def test_empty_and_garbage_tokens_are_rejected(token, idp_env):
    _reject(token)


def test_a_token_with_a_wrong_issuer_is_rejected(issuer, idp_env):
    sub = "wrong.issuer@keel.dev"
    set_user_claims(issuer, sub, {"email": sub, "groups": ["engineering"], "clearance": 2,
                                  "iss": "https://login.evil.example"})
    token = id_token_for(issuer, sub)
    # genuinely signed by the provider's key, so only the issuer check can reject it
    assert _verified_claims(issuer, token)["iss"] == "https://login.evil.example"
    _reject(token, "invalid ID token", "iss")


def test_a_token_from_another_provider_is_rejected(idp_env):
    other = DevIdentityProvider(port=free_port()).start()
    try:
        token = id_token_for(f"http://localhost:{other.port}", EXEC)
    finally:
        other.stop()
    _reject(token, "invalid ID token")


def test_an_expired_token_is_rejected(issuer, idp_env):
    sub = "expired.user@keel.dev"
    now = int(time.time())
    set_user_claims(issuer, sub, {"email": sub, "groups": ["engineering"], "clearance": 2,
                                  "iat": now - 7200, "exp": now - 3600})
    token = id_token_for(issuer, sub)
    assert _verified_claims(issuer, token)["exp"] == now - 3600  # signed by the real key
    _reject(token, "invalid ID token", "expired")


def test_a_token_just_inside_the_clock_skew_leeway_is_accepted(issuer, idp_env):
    sub = "skewed.clock@keel.dev"
    now = int(time.time())
    set_user_claims(issuer, sub, {"email": sub, "clearance": 1, "iat": now - 600, "exp": now - 5})
    principal = principal_from_id_token(id_token_for(issuer, sub))
    assert principal.sub == sub and principal.clearance == 1


def test_a_token_issued_to_another_client_is_rejected(issuer, idp_env):
    response = authorization_code_flow(issuer, EXEC, client_id="some-other-app", client_secret="other")
    token = response["id_token"]
    assert _verified_claims(issuer, token)["aud"] in ("some-other-app", ["some-other-app"])
    _reject(token, "invalid ID token")


def test_an_unreachable_provider_is_an_auth_error_not_a_crash(tokens, monkeypatch, idp_env):
    token = tokens(ENGINEER)
    monkeypatch.setenv("KEEL_DEV_IDP_PORT", str(closed_port()))
    config.reset_settings()
    auth._jwks.cache_clear()
    _reject(token, "identity provider unreachable")


# -- the provider's exposure ---------------------------------------------------------------------------------


def _non_loopback_ipv4() -> list[str]:
    addresses = []
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            if entry.family == socket.AF_INET and not entry.address.startswith("127."):
                addresses.append(entry.address)
    return addresses


def test_the_dev_provider_listens_on_loopback_only(idp):
    host, port = idp._server.socket.getsockname()[:2]
    assert (host, port) == ("127.0.0.1", idp.port)
    with socket.create_connection(("127.0.0.1", idp.port), timeout=2):
        pass  # loopback works
    for address in _non_loopback_ipv4():
        with pytest.raises(OSError):
            with socket.create_connection((address, idp.port), timeout=2):
                pass
    if socket.has_ipv6:
        with pytest.raises(OSError):
            with socket.create_connection(("::1", idp.port), timeout=2):
                pass


@pytest.mark.parametrize("path", [
    "/console",
    "/console?__debugger__=yes&cmd=printpin&s=x",
    "/?__debugger__=yes&cmd=resource&f=debugger.js",
])
def test_the_dev_provider_offers_no_werkzeug_debugger(path, issuer):
    response = httpx.get(f"{issuer}{path}", timeout=5)
    if path.startswith("/console"):
        assert response.status_code == 404
    assert "javascript" not in response.headers.get("content-type", "")
    for marker in ("EVALEX", "CONSOLE_MODE", "Werkzeug Debugger", "__debugger__"):
        assert marker not in response.text


# -- API keys on SQLite and PostgreSQL ------------------------------------------------------------------------


def test_api_key_lifecycle(database):
    ws = auth.ensure_workspace("acme-co", "Acme", plan="pro")
    assert (ws.id, ws.name, ws.plan) == ("acme-co", "Acme", "pro")
    assert auth.ensure_workspace("acme-co").name == "Acme"  # idempotent, never overwritten

    key, record = auth.create_api_key("acme-co", "ci pipeline")
    assert key.startswith("keel_sk_") and len(key) >= 40
    assert record.id is not None and record.workspace_id == "acme-co" and record.revoked_at is None
    assert record.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert record.prefix == key[:12] and len(record.prefix) < 16

    # only the hash is stored: the clear key appears nowhere in the table
    with db.get_engine().connect() as conn:
        stored = [tuple(map(str, row)) for row in conn.execute(text("SELECT * FROM api_key")).all()]
    assert len(stored) == 1
    assert not any(key in value or key[len("keel_sk_"):] in value for value in stored[0])
    assert record.key_hash in stored[0]

    principal = principal_from_api_key(key)
    assert principal.workspace == "acme-co" and principal.sub == f"apikey:{record.id}"
    assert principal.roles == {"api"} and principal.groups == {"all-staff"} and principal.clearance == 0
    assert principal_from_bearer(f"Bearer {key}") == principal
    assert principal_from_bearer(f"bearer {key}") == principal
    with db.session() as s:
        assert s.get(ApiKey, record.id).last_used_at is not None

    other_key, _ = auth.create_api_key("acme-co", "second key")
    assert other_key != key
    assert [k.name for k in auth.list_api_keys("acme-co")] == ["second key", "ci pipeline"]

    with pytest.raises(AuthError, match="unknown API key"):
        principal_from_api_key(key[:-2] + ("xy" if not key.endswith("xy") else "zz"))
    with pytest.raises(AuthError, match="malformed"):
        principal_from_api_key(key[len("keel_sk_"):])
    with pytest.raises(AuthError, match="missing"):
        principal_from_api_key("")

    assert auth.revoke_api_key(record.id) is True
    assert auth.revoke_api_key(record.id) is False  # already revoked
    assert auth.revoke_api_key(10**9) is False  # no such key
    with pytest.raises(AuthError, match="revoked"):
        principal_from_api_key(key)
    with pytest.raises(AuthError, match="revoked"):
        principal_from_bearer(f"Bearer {key}")
    assert principal_from_api_key(other_key).workspace == "acme-co"  # the other key still works
    with db.session() as s:
        assert s.get(ApiKey, record.id).revoked_at is not None


def test_api_keys_need_an_existing_workspace_and_a_name(database):
    with pytest.raises(ValueError, match="no workspace 'ghost'"):
        auth.create_api_key("ghost", "key")
    auth.ensure_workspace("real")
    for name in ("", "   ", "n" * 201):
        with pytest.raises(ValueError, match="needs a name"):
            auth.create_api_key("real", name)
    for hostile in ("", "a" * 65, "acme'; DROP TABLE api_key; --", "../etc", "ws id", "ws\x00"):
        with pytest.raises(ValueError, match="workspace id"):
            auth.ensure_workspace(hostile)
    with db.session() as s:
        assert s.exec(select(ApiKey)).all() == []
    assert db.get_engine().dialect.name == ("postgresql" if database == "postgresql" else "sqlite")
    assert os.environ.get("KEEL_DATABASE_URL", "").startswith("postgresql") == (database == "postgresql")
