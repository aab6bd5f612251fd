"""The app's lifespan: when the identity provider cannot start (its port is taken by something else), the job
workers that already started are still stopped by shutdown(), not left polling the database."""

from __future__ import annotations

import asyncio
import socket

import pytest

from core import config
from core.jobs import _runner


def test_a_failed_identity_provider_start_still_runs_shutdown(keel_home, monkeypatch):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)  # accepts connections but is no identity provider, so the dev provider cannot bind here
    monkeypatch.setenv("KEEL_DEV_IDP", "1")
    monkeypatch.setenv("KEEL_DEV_IDP_PORT", str(blocker.getsockname()[1]))
    monkeypatch.setenv("KEEL_JOB_WORKERS", "1")
    config.reset_settings()
    import app

    async def enter():
        async with app.lifespan(None):
            pass

    try:
        with pytest.raises(BaseException):  # noqa: B017 - whatever the provider raises, the lifespan must not start
            asyncio.run(enter())
    finally:
        blocker.close()
    assert _runner._queue is None, "job workers were left running"
