"""Start-up and shutdown of the shared services, used by the ASGI app, the CLI and the tests alike."""

from __future__ import annotations

import logging
import threading

from core import db
from core.config import get_settings

_logger = logging.getLogger(__name__)
_warm_up: threading.Thread | None = None
_warm_up_lock = threading.Lock()


def prepare() -> str:
    """Make the data directory, bring the schema to head and seed the price table; returns the revision."""
    settings = get_settings()
    settings.ensure_dirs()
    revision = db.upgrade()
    from core.llm import ensure_default_prices
    from core.workspace import release_stale_reservations

    ensure_default_prices()
    released = release_stale_reservations()  # credits a crashed process left reserved go back
    if released:
        _logger.info("gave back %d workspace credits left reserved by an earlier process", released)
    return revision


def start_identity_provider():
    """Start the embedded dev OIDC provider unless another provider is configured or one already answers."""
    from core.auth import secrets_auth_section
    from core.idp import DevIdentityProvider, is_dev_idp_up

    settings = get_settings()
    if secrets_auth_section() or not settings.dev_idp_enabled:
        return None
    if is_dev_idp_up(timeout=0.5):
        _logger.info("a dev identity provider already answers on port %s; reusing it", settings.dev_idp_port)
        return None
    return DevIdentityProvider().start()


def start_warm_up() -> threading.Thread:
    """Train (or load from the cache) the support classifier and index the help centre in the background, so the
    server is healthy first and a fresh install's first chat message does not pay for it. Once per process."""
    global _warm_up

    def run() -> None:
        from core.support import warm_up

        try:
            warm_up()
        except Exception:  # the first support message will try again and show its own error
            _logger.exception("support warm-up failed")

    with _warm_up_lock:
        if _warm_up is None:
            _warm_up = threading.Thread(target=run, daemon=True, name="support-warm-up")
            _warm_up.start()
        return _warm_up


def start_workers() -> None:
    """Run background jobs in this process too (every replica does; `KEEL_JOB_WORKERS=0` opts out)."""
    from core.jobs import housekeeping, start_workers as start

    start()
    housekeeping()  # leases that expired while no replica was up: failed or queued again now


def shutdown() -> None:
    """Hand running jobs back, then write every queued row (completion telemetry, then the request log)."""
    import sys

    from core.jobs import stop_workers
    from core.llm import shutdown_gateway

    stop_workers()  # jobs still running here go back to the queue for another replica (or fail on their last try)
    if "core.completion._service" in sys.modules:  # only if completion ran in this process
        from core.completion import set_completion_service

        service = set_completion_service(None)
        if service is not None:
            service.telemetry.close()  # writes what is queued, then stops its thread
    shutdown_gateway()
