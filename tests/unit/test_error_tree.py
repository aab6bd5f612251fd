"""One error tree under KeelError, the request-status vocabulary, and no reaching into the gateway's insides."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from core.errors import KeelError
from core.llm import STATUSES, BudgetRefused, LLMCancelled, LLMError, ProviderError, RequestStatus

ROOT = Path(__file__).resolve().parents[2]


def _feature_errors() -> list[type]:
    from core.annotation._queue import AnnotationError
    from core.api._fim import FimInputError
    from core.api._http import BodyError
    from core.auth import AuthError
    from core.completion._replay import TraceError
    from core.completion._types import CompletionInputError
    from core.config import ConfigError
    from core.evals._relabel import RelabelError
    from core.evals._runner import EvalError
    from core.evals._targets import EvalTargetError
    from core.health import HealthProblem
    from core.jobs._types import JobError
    from core.llm._budgets import BudgetExceeded
    from core.observe._decay import DecayError
    from core.observe._investigate import InvestigationError
    from core.observe._model_migration import MigrationError
    from core.prompts import PromptError
    from core.review import DiffError, RepoNotAllowed, ReviewError, SandboxError
    from core.search._access import AccessDenied
    from core.search._corpus import DocumentRefused
    from core.search._ingest import IngestError
    from core.search._retrieve import SearchInputError
    from core.search._viewer import DocumentUnavailable
    from core.support import _errors as support_errors
    from core.support._tools import ToolError
    from core.workspace import _errors as workspace_errors

    support = [c for _, c in inspect.getmembers(support_errors, inspect.isclass) if issubclass(c, Exception)]
    workspace = [c for _, c in inspect.getmembers(workspace_errors, inspect.isclass) if issubclass(c, Exception)]
    assert len(support) >= 8 and len(workspace) >= 9  # the modules' own classes were found
    return [LLMError, LLMCancelled, BudgetRefused, ProviderError, AnnotationError, FimInputError, BodyError,
            AuthError, TraceError, CompletionInputError, ConfigError, RelabelError, EvalError, EvalTargetError,
            HealthProblem, JobError, BudgetExceeded, DecayError, InvestigationError, MigrationError, PromptError,
            ReviewError, DiffError, RepoNotAllowed, SandboxError, AccessDenied, DocumentRefused, IngestError,
            SearchInputError, DocumentUnavailable, ToolError, *support, *workspace]


def test_every_feature_error_is_a_keel_error():
    errors = _feature_errors()
    outside = [e.__qualname__ for e in errors if not issubclass(e, KeelError)]
    assert outside == []


def test_feature_errors_keep_the_builtin_bases_callers_already_catch():
    from core.review import ReviewError
    from core.search._access import AccessDenied
    from core.support._errors import EmptyMessage

    assert issubclass(ReviewError, ValueError) and issubclass(EmptyMessage, ValueError)
    assert issubclass(AccessDenied, PermissionError) and issubclass(LLMError, RuntimeError)


def test_pr_review_has_one_review_error_root():
    import core.review as review

    roots = {name for name in dir(review) if name.endswith("Error") and isinstance(getattr(review, name), type)
             and issubclass(getattr(review, name), KeelError)}
    from core.review import ReviewError
    assert all(issubclass(getattr(review, name), ReviewError) for name in roots), roots


def test_budget_refused_is_an_llm_error_with_the_logged_status():
    exc = BudgetRefused("the customer 'acme' has reached its hard budget", request_id="r1")
    assert isinstance(exc, LLMError) and isinstance(exc, KeelError)
    assert exc.status == RequestStatus.BUDGET_REFUSED == "budget_refused" and exc.request_id == "r1"
    assert LLMCancelled("r2").status == "cancelled" and LLMError("x").status == "error"


def test_request_status_values_are_the_stored_strings():
    assert [s.value for s in RequestStatus] == ["ok", "error", "fallback", "cancelled", "budget_refused"]
    assert STATUSES == tuple(RequestStatus)
    assert all(isinstance(s, str) and str(s) == s.value for s in STATUSES)


def test_request_log_status_column_fits_every_status():
    from core.tables import RequestLog

    limit = RequestLog.__table__.c.status.type.length
    assert max(len(s) for s in RequestStatus) <= limit


_SCANNED = ("core", "ui", "pages", "bench")


def _chain(node: ast.AST) -> list[str]:
    """`get_gateway().budgets._loaded_at` -> ["get_gateway", "budgets", "_loaded_at"]: names from the root out."""
    names: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            names.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Name):
            names.append(node.id)
            return names[::-1]
        else:
            return names[::-1]


def _gateway_private_uses(path: Path) -> list[str]:
    """A private attribute or the log writer reached through a gateway (`gateway._run`, `gw.budgets._x`,
    `get_gateway().log.flush`, `llm._gateway`), or `.log.prices` on anything: what only core/llm may touch."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        names = _chain(node)
        where = f"{path.relative_to(ROOT)}:{node.lineno} {'.'.join(names)}"
        gateway_at = [i for i, n in enumerate(names) if "gateway" in n.lower() or n == "gw"]
        if gateway_at:
            after = names[gateway_at[0] + 1:]
            if any(n.startswith("_") for n in after) or (after and after[0] == "log"):
                found.add(where)
        if names[:1] == ["llm"] and any(n.startswith("_") for n in names[1:]):
            found.add(where)
        if node.attr == "prices" and len(names) >= 2 and names[-2] == "log":
            found.add(where)
    return sorted(found)


def test_no_caller_outside_core_llm_reaches_into_the_gateway():
    files = [p for d in _SCANNED for p in (ROOT / d).rglob("*.py")
             if "core/llm" not in p.relative_to(ROOT).as_posix() and "__pycache__" not in p.parts]
    assert len(files) > 100
    uses = [use for path in files for use in _gateway_private_uses(path)]
    assert uses == []


@pytest.mark.parametrize("source, expected", [
    ("gateway._run(r, c, h)", 1), ("get_gateway().log.flush()", 2), ("self.gateway.log.prices.cost(1)", 3),
    ("llm._gateway.log.flush()", 3), ("gateway.budgets._loaded_at = 0", 1), ("writer.log.prices", 1),
    ("gateway.flush()", 0), ("gateway.stats()['failed']", 0), ("gateway.budgets.reload()", 0), ("x._y", 0),
])
def test_the_gateway_scan_catches_what_it_should(tmp_path, monkeypatch, source, expected):
    path = ROOT / "tests" / "unit" / "_scan_probe.py"  # inside ROOT so the relative path works
    monkeypatch.setattr(Path, "read_text", lambda self, encoding=None: source)
    assert len(_gateway_private_uses(path)) == expected


def test_a_failing_cancel_callback_is_logged_and_the_others_still_run(caplog):
    from core.llm import CancelToken

    ran = []
    token = CancelToken()
    token.on_cancel(lambda: 1 / 0)
    token.on_cancel(lambda: ran.append("second"))
    with caplog.at_level("ERROR", logger="core.llm._types"):
        token.cancel()
    assert ran == ["second"] and token.cancelled
    (record,) = [r for r in caplog.records if r.name == "core.llm._types"]
    assert record.exc_info and record.exc_info[0] is ZeroDivisionError


def test_an_unmigrated_database_has_no_revision(tmp_path):
    from sqlalchemy import create_engine

    from core import db

    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    assert db.current_revision(engine) is None  # no alembic_version table: never migrated
    engine.dispose()


def test_the_providers_satisfy_the_provider_protocol():
    from core.config import ProviderSettings, get_settings
    from core.llm import EmbeddedProvider, OpenAIProvider, Provider

    openai_provider = OpenAIProvider("up", ProviderSettings(name="up", kind="openai", base_url="http://127.0.0.1:9"),
                                     get_settings())
    assert isinstance(openai_provider, Provider)
    members = ("name", "kind", "loaded", "models", "stream")
    assert all(hasattr(EmbeddedProvider, m) for m in members if m != "name")  # name is set per instance
    assert not isinstance(object(), Provider)


def test_flush_gateway_without_a_gateway_is_a_no_op():
    from core.llm import flush_gateway, set_gateway

    previous = set_gateway(None)
    try:
        assert flush_gateway(timeout=0.1) is True
    finally:
        set_gateway(previous)
