"""Two loopback model servers wired in as providers `good` and `other`, for the eval tests (one copy, not two)."""

from __future__ import annotations

import json

from core import config
from core.llm import save_prices, set_gateway


def rebuild_gateway() -> None:
    """Drop the process gateway (flushing its log) and the cached settings, so the next call reads the env anew."""
    old = set_gateway(None)
    if old is not None:
        old.flush()
        old.close()
    config.reset_settings()


def use_models(monkeypatch, good, other, suites_file) -> None:
    """Point Keel at `good` (every tier) and `other`, with the suites in `suites_file` and prices for m1/m2."""
    monkeypatch.setenv("KEEL_EVAL_SUITES", str(suites_file))
    monkeypatch.setenv("KEEL_PROVIDERS", json.dumps({
        "good": {"kind": "openai", "base_url": good.url, "api_key": "k"},
        "other": {"kind": "openai", "base_url": other.url, "api_key": "k"},
    }))
    monkeypatch.setenv("KEEL_TIERS", json.dumps({"fast": ["good/m1"], "capable": ["good/m1"]}))
    monkeypatch.setenv("KEEL_LLM_MAX_RETRIES", "0")
    monkeypatch.setenv("KEEL_LOG_FLUSH_INTERVAL", "0.02")
    rebuild_gateway()
    save_prices([{"model": "m1", "input_per_mtok": 2.0, "output_per_mtok": 8.0},
                 {"model": "m2", "input_per_mtok": 0.5, "output_per_mtok": 1.0}])
