"""The support conversation code is three modules by job: the data layer, the customer dialogue and the handoff /
agent console. Each one imports no UI (checked in a fresh interpreter, so nothing imported earlier hides it), the
layers point one way (records ← console ← dialogue), and `core.support` still exports the same public names."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODULES = ("core.support._records", "core.support._console", "core.support._dialogue")
UI = ("streamlit", "ui", "pages", "plotly", "gradio")


@pytest.mark.parametrize("module", MODULES)
def test_each_support_module_imports_no_ui(module, tmp_path):
    code = (f"import importlib, json, sys; importlib.import_module({module!r}); "
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {UI!r})))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "KEEL_HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def _support_imports(name: str) -> set[str]:
    tree = ast.parse((REPO / "core" / "support" / f"{name}.py").read_text(encoding="utf-8"))
    return {n.module.rsplit(".", 1)[-1] for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("core.support.")}


def test_the_layers_point_one_way():
    assert not _support_imports("_records") & {"_console", "_dialogue"}
    assert "_dialogue" not in _support_imports("_console")
    assert {"_records", "_console"} <= _support_imports("_dialogue")
    assert not (REPO / "core" / "support" / "_conversations.py").exists()


def test_core_support_keeps_its_public_names():
    import core.support as support

    for name in ("Conversation", "Customer", "Handoff", "Message", "QueueItem", "add_note",
                 "agent_reply", "cancel_action", "claim", "clean_text", "close_conversation", "confirm_action",
                 "customer_conversation", "escalate", "get_conversation", "get_handoff", "improve_summary",
                 "latest_conversation", "list_messages", "new_conversation", "open_conversation", "queue", "rate",
                 "request_human", "resolve", "send_message"):
        assert name in support.__all__, name
        assert callable(getattr(support, name)), name
    assert "MAX_MESSAGE_CHARS" in support.__all__ and support.MAX_MESSAGE_CHARS == 50_000


def test_an_unsaved_row_is_refused_a_clear_error_instead_of_an_id_of_none():
    from core.support._records import saved_id, to_conversation, to_message
    from core.tables import SupportConversation, SupportMessage

    with pytest.raises(ValueError, match="has not been saved yet"):
        to_conversation(SupportConversation(customer_sub="x"))
    with pytest.raises(ValueError, match="SupportMessage has not been saved yet"):
        to_message(SupportMessage(conversation_id=1, role="bot", author="b", text="t"))
    assert saved_id(SupportConversation(id=7, customer_sub="x")) == 7
    assert to_conversation(SupportConversation(id=7, customer_sub="x")).id == 7
