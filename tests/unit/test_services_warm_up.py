"""The support warm-up runs once per process in the background, and a failure is logged, never raised into start-up."""

from __future__ import annotations

import logging

import core.support
from core import services


def test_warm_up_runs_once_in_the_background_and_logs_a_failure(monkeypatch, caplog):
    calls = []

    def failing_warm_up():
        calls.append(1)
        raise RuntimeError("encoder files missing")

    monkeypatch.setattr(core.support, "warm_up", failing_warm_up)
    monkeypatch.setattr(services, "_warm_up", None)
    with caplog.at_level(logging.ERROR, logger="core.services"):
        first = services.start_warm_up()
        first.join(10)
        second = services.start_warm_up()
    assert second is first and not first.is_alive() and first.daemon
    assert calls == [1]
    assert "support warm-up failed" in caplog.text and "encoder files missing" in caplog.text


def test_the_app_starts_the_warm_up_after_the_services_it_needs():
    import ast
    from pathlib import Path

    source = (Path(__file__).resolve().parents[2] / "app.py").read_text()
    lifespan = next(n for n in ast.walk(ast.parse(source))
                    if isinstance(n, ast.AsyncFunctionDef) and n.name == "lifespan")
    calls = [n.func.attr for n in ast.walk(lifespan) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and isinstance(n.func.value, ast.Name) and n.func.value.id == "services"]
    assert calls.index("prepare") < calls.index("start_warm_up")
