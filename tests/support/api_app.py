"""Keel's `/api` and `/v1` routes as their own ASGI app, for tests that need a real server *process* (to SIGKILL
it): `python -m uvicorn tests.support.api_app:app`. Settings come from the KEEL_* environment as in `keel serve`."""

from __future__ import annotations

from contextlib import asynccontextmanager

from starlette.applications import Starlette

from core import services
from core.api import routes


@asynccontextmanager
async def lifespan(_app):
    services.prepare()
    try:
        yield
    finally:
        services.shutdown()


app = Starlette(routes=routes, lifespan=lifespan)
