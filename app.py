"""Keel's one ASGI process: Streamlit UI at /, Gradio playground at /playground, JSON API at /api,
OpenAI-compatible gateway at /v1. Run with `keel serve` (or `streamlit run app.py`)."""

from __future__ import annotations

import logging
import os
from contextlib import asynccontextmanager

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import streamlit as st  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from core import services  # noqa: E402
from core.api import routes as api_routes  # noqa: E402
from core.auth import secrets_auth_section  # noqa: E402
from core.config import installation_secret  # noqa: E402
from core.idp import dev_auth_secrets  # noqa: E402
from ui.playground import mount_route  # noqa: E402
from ui.session import RecordSignOut  # noqa: E402

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
logging.getLogger("alembic").setLevel(logging.WARNING)
playground_mount, playground_host = mount_route()


@asynccontextmanager
async def lifespan(_app):
    services.prepare()
    idp = None
    try:  # workers and the identity provider start inside: if either fails, shutdown() still stops what started
        services.start_workers()
        idp = services.start_identity_provider()
        services.start_warm_up()
        async with playground_host.router.lifespan_context(playground_host):
            yield {}
    finally:
        services.shutdown()
        if idp is not None:
            idp.stop()


# A real [auth] section in .streamlit/secrets.toml wins; otherwise sign in through the embedded dev provider.
_secrets = None if secrets_auth_section() else {"auth": dev_auth_secrets(installation_secret("cookie"))}

app = st.App(
    "streamlit_app.py",
    routes=[*api_routes, playground_mount],
    middleware=[Middleware(RecordSignOut)],  # sign-out revokes the session server-side, not only in the browser
    lifespan=lifespan,
    secrets=_secrets,
)

if __name__ == "__main__":
    app.run()
