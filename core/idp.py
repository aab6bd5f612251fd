"""The embedded dev identity provider: a real OIDC server (oidc-provider-mock) with demo users.

It listens on loopback only and exists so a fresh machine can sign in with no network; pointing `[auth]`
in `.streamlit/secrets.toml` at any other OIDC provider replaces it without code changes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from core.config import get_settings

if TYPE_CHECKING:
    from werkzeug.serving import BaseWSGIServer

DEV_CLIENT_ID = "keel-dev"
DEV_CLIENT_SECRET = "keel-dev-secret-not-for-production"


@dataclass(frozen=True)
class DevUser:
    sub: str
    name: str
    title: str
    groups: tuple[str, ...]
    clearance: int

    @property
    def claims(self) -> dict:
        return {
            "email": self.sub, "email_verified": True, "name": self.name,
            "groups": list(self.groups), "clearance": self.clearance, "title": self.title,
        }


DEV_USERS: tuple[DevUser, ...] = (
    DevUser("alice.engineer@keel.dev", "Alice Chen", "Software engineer", ("engineering",), 2),
    DevUser("sam.support@keel.dev", "Sam Rivera", "Support agent", ("support",), 1),
    DevUser("hana.hr@keel.dev", "Hana Okafor", "HR manager", ("hr", "people-managers"), 2),
    DevUser("milo.intern@keel.dev", "Milo Park", "Marketing intern", ("marketing",), 0),
    DevUser("erin.exec@keel.dev", "Erin Walsh", "Executive (COO)", ("executives", "people-managers"), 3),
    DevUser("ivan.admin@keel.dev", "Ivan Petrov", "IT administrator", ("it-admins", "engineering"), 2),
)


def dev_idp_url() -> str:
    # Always "localhost": mixing it with 127.0.0.1 breaks the OIDC redirect and issuer checks.
    return f"http://localhost:{get_settings().dev_idp_port}"


def dev_auth_secrets(cookie_secret: str) -> dict:
    """The `[auth]` section Streamlit needs to sign in through the embedded provider."""
    settings = get_settings()
    return {
        "redirect_uri": f"{settings.public_url}/oauth2callback",
        "cookie_secret": cookie_secret,
        "client_id": DEV_CLIENT_ID,
        "client_secret": DEV_CLIENT_SECRET,
        "server_metadata_url": f"{dev_idp_url()}/.well-known/openid-configuration",
    }


def is_dev_idp_up(timeout: float = 1.0) -> bool:
    try:
        r = httpx.get(f"{dev_idp_url()}/.well-known/openid-configuration", timeout=timeout)
        return r.status_code == 200 and "authorization_endpoint" in r.json()
    except (httpx.HTTPError, ValueError):
        return False


class DevIdentityProvider:
    """Runs the provider on a daemon thread bound to 127.0.0.1; `stop()` shuts it down."""

    def __init__(self, port: int | None = None):
        self.port = port if port is not None else get_settings().dev_idp_port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "DevIdentityProvider":
        import oidc_provider_mock
        import werkzeug.serving

        flask_app = oidc_provider_mock.app(
            user_claims=[oidc_provider_mock.User(sub=u.sub, claims=u.claims) for u in DEV_USERS],
            require_nonce=False,
        )
        # Our base template first: it labels the provider as dev-only and needs no CDN for its styles.
        import jinja2

        flask_app.jinja_loader = jinja2.ChoiceLoader([
            jinja2.FileSystemLoader(str(Path(__file__).resolve().parent / "idp_templates")),
            flask_app.jinja_loader,
        ])
        # The library wraps itself in Werkzeug's interactive debugger; a login server must not offer a console.
        debugged = flask_app.wsgi_app
        flask_app.wsgi_app = getattr(debugged, "app", debugged)
        flask_app.debug = False
        try:
            self._server = werkzeug.serving.make_server("127.0.0.1", self.port, flask_app, threaded=True)
        except OSError as exc:
            raise RuntimeError(
                f"cannot start the dev identity provider on 127.0.0.1:{self.port} ({exc}); "
                "set KEEL_DEV_IDP_PORT to a free port"
            ) from None
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="keel-dev-idp", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
