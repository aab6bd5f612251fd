"""Health of every dependency, for `/api/health`, the Home page and `keel serve`'s readiness wait."""

from __future__ import annotations

import logging
import time

from core import db
from core.config import get_settings
from core.errors import KeelError

_logger = logging.getLogger(__name__)


class HealthProblem(KeelError, RuntimeError):
    """A failed check that still has details to show (e.g. the model worker's pid and last crash)."""

    def __init__(self, message: str, detail: dict):
        super().__init__(message)
        self.detail = detail


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        detail = check() or {}
        return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1), **detail}
    except Exception as exc:  # a health check reports failures, it never raises them
        _logger.warning("health check %s failed", getattr(check, "__name__", check), exc_info=True)
        return {"ok": False, "ms": round((time.perf_counter() - started) * 1000, 1), "error": str(exc)[:300],
                **getattr(exc, "detail", {})}


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
    used = {target.partition("/")[0] for chain in gateway.settings.tiers.values() for target in chain}
    problems = []
    for name, provider in gateway.providers.items():
        providers[name] = {"kind": provider.kind, "loaded": bool(provider.loaded),
                           "circuit": gateway.breakers[name].state}
        worker = getattr(provider, "health", None)
        if worker is not None:  # the embedded model's worker process: pid, state, restarts, last crash
            providers[name]["worker"] = detail = worker()
            if detail.get("problem") and name in used:
                problems.append(f"{name}: {detail['problem']}")
    result = {"providers": providers, "tiers": gateway.settings.tiers}
    if all(p["circuit"] == "open" for p in providers.values()):
        raise HealthProblem("every provider's circuit is open", result)
    if problems:
        raise HealthProblem("; ".join(problems), result)
    return result


def _request_log() -> dict:
    from core.llm import get_gateway

    stats = get_gateway().stats()
    recent = {k: stats[k] for k in ("failed_recent", "quarantined_recent", "last_error")}
    detail = {"written": stats["written"], "queued": stats["queued"], "failed_total": stats["failed"],
              "quarantined_total": stats["quarantined"], "window_s": stats["window_s"], **recent}
    # Only recent failures count, so health recovers by itself once the cause is gone; quarantined rows (kept
    # with their error, a scrubbed copy logged) are reported without failing the check.
    if recent["failed_recent"]:
        raise RuntimeError(f"{recent['failed_recent']} request-log rows could not be written in the last "
                           f"{stats['window_s']:g} s (kept in the quarantine): {recent['last_error']}")
    return detail


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
