"""Health of every dependency, for `/api/health`, the Home page and `keel serve`'s readiness wait."""

from __future__ import annotations

import time

from core import db
from core.config import get_settings


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        detail = check() or {}
        return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1), **detail}
    except Exception as exc:  # a health check reports failures, it never raises them
        return {"ok": False, "ms": round((time.perf_counter() - started) * 1000, 1), "error": str(exc)[:300]}


def _database() -> dict:
    db.ping()
    return {"dialect": db.get_engine().dialect.name}


def _migrations() -> dict:
    current, head = db.current_revision(), db.head_revision()
    if current != head:
        raise RuntimeError(f"database at revision {current}, code expects {head}: run `keel db upgrade`")
    return {"revision": current}


def _llm() -> dict:
    from core.llm import get_gateway

    gateway = get_gateway()
    providers = {}
    for name, provider in gateway.providers.items():
        providers[name] = {"kind": provider.kind, "loaded": bool(provider.loaded),
                           "circuit": gateway.breakers[name].state}
    if all(p["circuit"] == "open" for p in providers.values()):
        raise RuntimeError("every provider's circuit is open")
    return {"providers": providers, "tiers": gateway.settings.tiers}


def _request_log() -> dict:
    from core.llm import get_gateway

    log = get_gateway().log
    if log.failed:
        raise RuntimeError(f"{log.failed} request-log rows could not be written")
    return {"written": log.written, "queued": log._queue.qsize()}


def _identity() -> dict:
    from core.auth import secrets_auth_section
    from core.idp import is_dev_idp_up

    if secrets_auth_section():
        return {"provider": "configured in .streamlit/secrets.toml"}
    if not is_dev_idp_up():
        raise RuntimeError("the embedded dev identity provider is not answering")
    return {"provider": "embedded dev provider (oidc-provider-mock)"}


def _storage() -> dict:
    settings = get_settings()
    settings.ensure_dirs()
    probe = settings.home / ".health-probe"
    probe.write_text("ok")
    probe.unlink()
    return {"home": str(settings.home)}


CHECKS = {
    "database": _database,
    "migrations": _migrations,
    "llm": _llm,
    "request_log": _request_log,
    "identity": _identity,
    "storage": _storage,
}


def check() -> dict:
    results = {name: _timed(fn) for name, fn in CHECKS.items()}
    return {"status": "ok" if all(r["ok"] for r in results.values()) else "degraded", "checks": results}
