"""Who is asking: a `Principal` built from OIDC claims, per-workspace API keys, and ID-token checks.

Everything that decides access (pages, API routes, document filters) reads a Principal, never raw claims.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from core import db
from core.config import REPO_ROOT
from core.errors import KeelError
from core.tables import ApiKey, RevokedSession, Workspace

_logger = logging.getLogger(__name__)

MAX_CLEARANCE = 3
CLEARANCE_NAMES = {0: "public", 1: "internal", 2: "confidential", 3: "restricted"}
ALL_STAFF = "all-staff"
# Roles are derived from groups in one place, so pages and routes never interpret groups themselves.
ROLE_GROUPS = {
    "admin": {"it-admins", "executives"},
    "developer": {"engineering", "it-admins"},
    "support_agent": {"support"},
    "hr": {"hr"},
}
API_KEY_PREFIX = "keel_sk_"


class AuthError(KeelError, PermissionError):
    """Credentials are missing, malformed, unknown or revoked."""


@dataclass(frozen=True)
class Principal:
    sub: str
    email: str = ""
    name: str = ""
    email_verified: bool = False  # the provider vouches for `email`; only then may it identify an account
    groups: frozenset[str] = field(default_factory=frozenset)
    clearance: int = 0
    roles: frozenset[str] = field(default_factory=frozenset)
    workspace: str | None = None  # set for API-key principals

    @property
    def display_name(self) -> str:
        return self.name or self.email or self.sub

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))

    @property
    def clearance_name(self) -> str:
        return CLEARANCE_NAMES[self.clearance]


def principal_from_claims(claims) -> Principal:
    """Build a Principal from ID-token claims; anything malformed grants less, never more."""
    claims = dict(claims or {})
    sub = str(claims.get("sub") or "").strip()
    if not sub:
        raise AuthError("the identity has no subject (sub) claim")
    groups = _parse_groups(claims.get("groups"))
    groups.add(ALL_STAFF)
    clearance = _parse_clearance(claims.get("clearance"))
    roles = {"member"} | {role for role, needed in ROLE_GROUPS.items() if groups & needed}
    return Principal(
        sub=sub,
        email=str(claims.get("email") or ""),
        email_verified=_parse_verified(claims.get("email_verified")),
        name=str(claims.get("name") or ""),
        groups=frozenset(groups),
        clearance=clearance,
        roles=frozenset(roles),
    )


def _parse_verified(raw) -> bool:
    """`email_verified` is true only when the provider says so: JSON true, or the string "true" some providers send."""
    return raw is True or (isinstance(raw, str) and raw.strip().lower() == "true")


def _parse_groups(raw) -> set[str]:
    if raw is None:
        return set()
    if isinstance(raw, str):
        raw = raw.split(",")
    if not isinstance(raw, (list, tuple, set, frozenset)):
        return set()
    groups = set()
    for item in raw:
        if isinstance(item, str):
            name = item.strip().lower()
            if name and len(name) <= 64 and all(c.isalnum() or c in "-_." for c in name):
                groups.add(name)
    return groups


def _parse_clearance(raw) -> int:
    if isinstance(raw, bool):
        return 0
    try:
        value = int(raw)
    except (TypeError, ValueError, OverflowError):  # OverflowError: JSON allows Infinity
        return 0
    return value if 0 <= value <= MAX_CLEARANCE else 0


# -- API keys ------------------------------------------------------------------------------------


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def ensure_workspace(workspace_id: str, name: str | None = None, plan: str = "free") -> Workspace:
    if not workspace_id or len(workspace_id) > 64 or not all(c.isalnum() or c in "-_" for c in workspace_id):
        raise ValueError("a workspace id is 1-64 letters, digits, '-' or '_'")
    with db.session() as s:
        ws = s.get(Workspace, workspace_id)
        if ws is None:
            ws = Workspace(id=workspace_id, name=name or workspace_id, plan=plan, created_at=time.time())
            s.add(ws)
        return ws


def create_api_key(workspace_id: str, name: str) -> tuple[str, ApiKey]:
    """Returns the key in clear (shown once) and its stored record (hash only)."""
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ValueError("an API key needs a name of 1-200 characters")
    with db.session() as s:
        if s.get(Workspace, workspace_id) is None:
            raise ValueError(f"no workspace {workspace_id!r}")
        key = API_KEY_PREFIX + secrets.token_urlsafe(32)
        record = ApiKey(
            workspace_id=workspace_id, name=name, prefix=key[: len(API_KEY_PREFIX) + 4],
            key_hash=_hash_key(key), created_at=time.time(),
        )
        s.add(record)
        s.flush()
        s.refresh(record)
        return key, record


def list_api_keys(workspace_id: str | None = None) -> list[ApiKey]:
    with db.session() as s:
        query = select(ApiKey).order_by(col(ApiKey.created_at).desc())
        if workspace_id:
            query = query.where(ApiKey.workspace_id == workspace_id)
        return list(s.exec(query).all())


def revoke_api_key(key_id: int) -> bool:
    with db.session() as s:
        record = s.get(ApiKey, key_id)
        if record is None or record.revoked_at is not None:
            return False
        record.revoked_at = time.time()
        s.add(record)
        return True


def api_key_subject(key_id: int) -> str:
    """The Principal subject of an API key: unique per key (never derived from the displayed prefix)."""
    return f"apikey:{int(key_id)}"


def principal_from_api_key(key: str | None) -> Principal:
    """The workspace principal for a live API key; raises AuthError for missing, wrong or revoked keys."""
    if not key:
        raise AuthError("missing API key: send 'Authorization: Bearer keel_sk_…'")
    if not key.startswith(API_KEY_PREFIX) or len(key) > 200:
        raise AuthError("malformed API key")
    with db.session() as s:
        record = s.exec(select(ApiKey).where(ApiKey.key_hash == _hash_key(key))).first()
        if record is None:
            raise AuthError("unknown API key")
        if record.revoked_at is not None:
            raise AuthError("this API key has been revoked")
        if not record.last_used_at or time.time() - record.last_used_at > 60:
            record.last_used_at = time.time()
            s.add(record)
        workspace, key_id = record.workspace_id, record.id
    if key_id is None:  # a row read from SQL always has its primary key
        raise AuthError("this API key has no id")
    # The identity is the key's database id: its displayed prefix is 4 random characters, shared by other keys
    # (in other workspaces) often enough that sessions, logs and bills keyed on it would mix callers.
    return Principal(
        sub=api_key_subject(key_id), name=f"API key {record.name}", workspace=workspace,
        groups=frozenset({ALL_STAFF}), roles=frozenset({"api"}),
    )


def billing_customer(principal: Principal) -> str:
    """Whose budget and bill an LLM call counts against: an API key's workspace, or a person's own workspace, so
    every caller of a metered route has a customer and customer budgets always apply."""
    if principal.workspace:
        return principal.workspace
    from core.workspace import personal_workspace_id  # core.workspace imports this module

    return personal_workspace_id(principal.sub)


# -- UI sessions (Streamlit's signed cookie) ------------------------------------------------------

SESSION_COOKIE_MAX_AGE_S = 30 * 86400  # Streamlit's auth cookie lifetime: a revocation must outlive the cookie
_SIGN_IN_CLAIMS = ("iss", "aud", "sub", "iat", "exp", "auth_time", "nonce", "sid", "jti", "at_hash")
_COOKIE_ONLY_KEYS = {"origin", "is_logged_in", "provider", "tokens"}  # added by Streamlit, not by the provider


def session_key(claims) -> str:
    """Names one sign-in, from the ID-token claims its cookie carries (issuer, subject, issued-at, nonce…): the
    same key whether read from the cookie by a route or from `st.user` by a page."""
    claims = dict(claims or {})
    picked = {k: claims[k] for k in _SIGN_IN_CLAIMS if k in claims}
    if not {"iat", "nonce", "jti", "sid"} & picked.keys():  # nothing per-sign-in: all the provider's claims
        picked = {k: v for k, v in claims.items() if k not in _COOKIE_ONLY_KEYS}
    return hashlib.sha256(json.dumps(picked, sort_keys=True, default=str).encode()).hexdigest()


def end_session(claims) -> str:
    """Sign-out: record the session as revoked in SQL (shared by every replica), so its cookie stops working even
    when replayed. Idempotent; prunes revocations whose cookies have expired anyway. Returns the session key."""
    key, now = session_key(claims), time.time()
    try:
        with db.session() as s:
            s.exec(delete(RevokedSession).where(col(RevokedSession.expires_at) < now))
            if s.get(RevokedSession, key) is None:
                s.add(RevokedSession(key=key, sub=str(dict(claims or {}).get("sub") or "")[:255], revoked_at=now,
                                     expires_at=now + SESSION_COOKIE_MAX_AGE_S))
    except IntegrityError:  # a concurrent sign-out of the same session wrote it first
        pass
    return key


def session_revoked(claims) -> bool:
    with db.session() as s:
        return s.get(RevokedSession, session_key(claims)) is not None


def principal_from_session(claims) -> Principal:
    """The Principal of a UI session cookie's claims; AuthError once that session has signed out."""
    principal = principal_from_claims(claims)
    if session_revoked(claims):
        raise AuthError("this session has signed out: sign in again")
    return principal


# -- OIDC ----------------------------------------------------------------------------------------


def secrets_auth_section() -> dict:
    """The `[auth]` table of `.streamlit/secrets.toml`, or {} when the embedded dev provider is used."""
    path = REPO_ROOT / ".streamlit" / "secrets.toml"
    if not path.is_file():
        return {}
    try:
        return dict(tomllib.loads(path.read_text()).get("auth", {}))
    except tomllib.TOMLDecodeError as exc:
        raise AuthError(f".streamlit/secrets.toml is not valid TOML: {exc}") from None


def oidc_metadata_url() -> str:
    section = secrets_auth_section()
    url = section.get("server_metadata_url")
    if url:
        return url
    from core.idp import dev_idp_url

    return f"{dev_idp_url()}/.well-known/openid-configuration"


@lru_cache(maxsize=4)
def _jwks(metadata_url: str, generation: int):
    import httpx
    from authlib.jose import JsonWebKey

    meta = httpx.get(metadata_url, timeout=5).json()
    keys = httpx.get(meta["jwks_uri"], timeout=5).json()
    return meta, JsonWebKey.import_key_set(keys)


_jwks_generation = 0


def _client_id() -> str:
    from core.idp import DEV_CLIENT_ID

    return secrets_auth_section().get("client_id") or DEV_CLIENT_ID


def principal_from_id_token(token: str | None) -> Principal:
    """Verify an ID token against the provider's JWKS (signature, issuer, audience, expiry); build its Principal."""
    global _jwks_generation
    from authlib.jose import JsonWebToken
    from authlib.jose.errors import JoseError

    if not token:
        raise AuthError("missing bearer token")
    if len(token) > 16_000 or token.count(".") != 2:
        raise AuthError("invalid ID token: not a compact JWT")
    url = oidc_metadata_url()
    for refetched in (False, True):
        try:
            meta, keys = _jwks(url, _jwks_generation)
        except Exception as exc:  # any transport or parse failure: the caller sees a 401, the log the cause
            _logger.exception("fetching the identity provider's keys from %s failed", url)
            raise AuthError(f"identity provider unreachable: {exc}") from None
        try:
            claims = JsonWebToken(["RS256", "ES256"]).decode(
                token, keys, claims_options={
                    "iss": {"essential": True, "value": meta["issuer"]},
                    "aud": {"essential": True, "values": [_client_id()]},
                    "exp": {"essential": True},
                },
            )
            claims.validate(leeway=30)
            return principal_from_claims(claims)
        except ValueError as exc:
            # An unknown key id: the provider may have rotated keys (a restarted dev provider does); refetch once.
            if not refetched and "key" in str(exc).lower():
                _jwks_generation += 1
                continue
            raise AuthError(f"invalid ID token: {exc}") from None
        except JoseError as exc:
            raise AuthError(f"invalid ID token: {exc}") from None
    raise AuthError("invalid ID token")


def principal_from_bearer(authorization: str | None) -> Principal:
    """API keys and ID tokens both arrive as `Authorization: Bearer …`; route by shape."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise AuthError("missing credentials: send 'Authorization: Bearer <API key or ID token>'")
    token = authorization[7:].strip()
    if token.startswith(API_KEY_PREFIX):
        return principal_from_api_key(token)
    return principal_from_id_token(token)
