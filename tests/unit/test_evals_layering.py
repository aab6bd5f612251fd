"""core.evals is a platform features plug into: it imports no feature package (checked on the parsed source), and
features reach it only through the registry their own `_eval.py` fills."""

import ast
import logging
from pathlib import Path

import pytest

from core.config import load_settings

REPO = Path(__file__).resolve().parents[2]
FEATURES = {"core.support", "core.search", "core.workspace", "core.review", "core.completion"}


def imported_modules(source: str) -> set[str]:
    """Every module a file imports, absolute and dotted, wherever the import sits (top level or inside a function)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against core.evals
                base = ".".join(["core", "evals"][: 3 - node.level] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # `from core import support`
    return found


def feature_imports(source: str) -> set[str]:
    return {m for m in imported_modules(source) if any(m == f or m.startswith(f + ".") for f in FEATURES)}


def test_the_checker_sees_every_way_of_importing_a_feature():
    source = ("import core.review._agent\nfrom core import search\n"
              "def f():\n    from core.support._router import SupportBranch\n"
              "from core.llm import get_gateway\nfrom core.supporting import x\n")
    found = feature_imports(source)
    assert {"core.review._agent", "core.search", "core.support._router"} <= found
    assert {".".join(m.split(".")[:2]) for m in found} == {"core.review", "core.search", "core.support"}


def test_core_evals_imports_no_feature_package():
    files = sorted((REPO / "core" / "evals").glob("*.py"))
    assert len(files) >= 7
    offenders = {p.name: feature_imports(p.read_text(encoding="utf-8")) for p in files}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_core_ops_is_gone():
    assert not (REPO / "core" / "ops").exists()


def test_features_register_their_targets_and_branches_from_their_own_eval_module():
    from core.evals import Agent, EvalTargetError, agent_branches, get_target

    for name, module in (("support.route", "core.support._eval"), ("support.classify", "core.support._eval"),
                         ("search.retrieve", "core.search._eval"), ("workspace.task", "core.workspace._eval"),
                         ("review.findings", "core.review._eval"), ("review.real", "core.review._eval"),
                         ("completion.fill", "core.completion._eval"), ("llm.chat", "core.evals._targets")):
        assert type(get_target(name)).__module__ == module, name
    branches = agent_branches()
    assert "faq_answer" in branches[Agent.SUPPORT] and "tools_only" in branches[Agent.REVIEW]
    with pytest.raises(EvalTargetError, match=r"unknown target 'support\.nope'.*core/<feature>/_eval\.py"):
        get_target("support.nope")
    with pytest.raises(EvalTargetError, match="unknown target 'cli.eval'"):
        get_target("cli.eval")  # core/cli/_eval.py is the CLI, not a feature's eval hooks


def test_annotation_sample_share_reads_the_old_name_with_a_warning(monkeypatch, caplog):
    monkeypatch.delenv("KEEL_ANNOTATION_SAMPLE_SHARE", raising=False)
    monkeypatch.setenv("KEEL_REVIEW_SAMPLE_SHARE", "0.25")
    with caplog.at_level(logging.WARNING, logger="core.config"):
        assert load_settings().annotation_sample_share == 0.25
    assert "KEEL_REVIEW_SAMPLE_SHARE is deprecated" in caplog.text and "KEEL_ANNOTATION_SAMPLE_SHARE" in caplog.text

    caplog.clear()
    monkeypatch.setenv("KEEL_ANNOTATION_SAMPLE_SHARE", "0.5")
    with caplog.at_level(logging.WARNING, logger="core.config"):
        assert load_settings().annotation_sample_share == 0.5  # the new name wins, and says nothing
    assert "deprecated" not in caplog.text


def test_importing_evals_observe_or_annotation_loads_no_feature():
    import subprocess
    import sys

    code = ("import sys, core.evals, core.observe, core.annotation\n"
            f"print(sorted(m for m in sys.modules if any(m == f or m.startswith(f + '.') for f in {sorted(FEATURES)})))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
