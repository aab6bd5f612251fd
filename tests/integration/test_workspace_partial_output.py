"""Issue 19 #2: a Workspace AI answer that stops part-way keeps what it wrote, with a plain note, and the page
shows no internal error text. The real page widget (ui.workspace.run_and_stream) runs under Streamlit's
AppTest against real SQL and a scripted model on loopback that cuts its stream mid-answer."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from core import config
from core.llm import set_gateway
from tests.support.fault_server import FaultServer

pytestmark = pytest.mark.timeout(300)
ANSWER = "The team agreed to move the launch to May and Alice sends the plan on Friday."
INTERNAL = ("tier", "all targets failed", "loop/m1", "time limit", "Traceback", "exceeded")


def _page():
    import streamlit as st

    from core.auth import Principal
    from core.workspace import workspaces_for
    from ui.workspace import run_and_stream

    who = Principal(sub="hana.hr@keel.dev", email="hana.hr@keel.dev", groups=frozenset({"hr"}), clearance=2)
    ws = workspaces_for(who)[0].id
    text = "We met on Monday and agreed to move the launch to May. Alice sends the plan on Friday."
    st.session_state["out"] = run_and_stream(who, ws, {"task": "summarize", "params": {}, "selection": text,
                                                       "page": text, "start": 0, "end": len(text), "doc": 1})


@pytest.fixture
def model(database, monkeypatch):
    with FaultServer(answer=ANSWER, token_delay=0.0, cut_after=4) as server:
        monkeypatch.setenv("KEEL_PROVIDERS", json.dumps({"loop": {"kind": "openai", "base_url": server.url,
                                                                  "api_key": "k"}}))
        monkeypatch.setenv("KEEL_TIERS", json.dumps({t: ["loop/m1"] for t in ("fast", "capable", "code")}))
        monkeypatch.setenv("KEEL_LLM_MAX_RETRIES", "0")
        config.reset_settings()
        old = set_gateway(None)
        if old is not None:
            old.log.close()
        yield server


def _shown(at) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "error", "info", "warning", "caption")
                     for e in getattr(at, kind))


def test_a_stream_cut_part_way_keeps_the_text_with_a_plain_note(model):
    model.script(["cut_midway"])
    at = AppTest.from_function(_page, default_timeout=120).run()
    out = at.session_state["out"]
    assert out is not None and out["text"] and ANSWER.startswith(out["text"].split(" ")[0])
    assert "stopped before it finished" in out["notice"] and "given back" in out["notice"]
    assert not any(word in out["notice"] + out["meta"] + _shown(at) for word in INTERNAL), _shown(at)


def test_a_model_that_never_answers_gets_a_plain_error(model):
    model.script(["http500"])
    at = AppTest.from_function(_page, default_timeout=120).run()
    assert at.session_state["out"] is None
    errors = [str(e.value) for e in at.error]
    assert errors and "could not answer just now" in errors[0]
    assert not any(word in _shown(at) for word in INTERNAL), _shown(at)
