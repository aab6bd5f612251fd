"""Settings validation, and the house rule that dependencies point pages → ui → core."""

import ast
from pathlib import Path

import pytest

from core.config import ConfigError, load_settings

REPO = Path(__file__).resolve().parents[2]


def test_defaults_work_offline(monkeypatch, tmp_path):
    for var in ("KEEL_TIERS", "KEEL_PROVIDERS", "KEEL_OPENAI_BASE_URL", "KEEL_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KEEL_HOME", str(tmp_path))
    s = load_settings()
    assert s.database_url == f"sqlite:///{tmp_path / 'keel.db'}"
    assert set(s.tiers) >= {"fast", "capable", "code"}
    assert all(t.startswith("embedded/") for chain in s.tiers.values() for t in chain)
    assert s.host == "127.0.0.1"


@pytest.mark.parametrize("var, value, message", [
    ("KEEL_PORT", "eighty", "not a valid int"),
    ("KEEL_LLM_TIMEOUT", "-3", "must not be negative"),
    ("KEEL_TIERS", "{not json", "not valid JSON"),
    ("KEEL_TIERS", '{"fast": ["nowhere/m"]}', "unknown provider"),
    ("KEEL_TIERS", '{"fast": []}', "non-empty list"),
    ("KEEL_PROVIDERS", '{"x": {"kind": "carrier-pigeon"}}', "kind openai or embedded"),
])
def test_bad_settings_fail_with_the_variable_named(monkeypatch, var, value, message):
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=message):
        load_settings()


def test_openai_provider_added_by_base_url(monkeypatch):
    monkeypatch.setenv("KEEL_OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
    monkeypatch.setenv("KEEL_TIERS", '{"capable": ["openai/gpt-4o-mini", "embedded/smollm2-135m-instruct"]}')
    s = load_settings()
    assert s.providers["openai"].kind == "openai"
    assert s.tiers["capable"][0] == "openai/gpt-4o-mini"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_imports_no_ui_code():
    offenders = {str(p.relative_to(REPO)): _imports(p) & {"streamlit", "gradio", "ui", "pages", "plotly"}
                 for p in (REPO / "core").rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_pages_hold_no_sql():
    offenders = {str(p.relative_to(REPO)): _imports(p) & {"sqlalchemy", "sqlmodel", "sqlite3", "psycopg"}
                 for p in (REPO / "pages").glob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_every_page_in_navigation_exists():
    from ui.shell import PAGES

    for _, path, *_ in PAGES:
        assert (REPO / path).is_file(), path
