"""Two `keel serve` processes on different ports sharing one PostgreSQL database and one LanceDB directory, with a
loopback OpenAI-compatible server as the model and the dev identity provider for real ID tokens.

What one replica does, the other sees: a customer's chat on A reaches the agent's console on B and back; a search
sync started on A shows progress on B and is searchable on both; an eval run started on A appears on B; a hard
budget holds under 20 concurrent calls spread over both; killing the replica running a job leaves it retried (or
failed) by the survivor, never "running". Figures are printed (run with -s) and written to
test-output/two_replicas.json.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import _reset_core, free_port
from tests.support.fault_server import FaultServer
from tests.support.oidc import id_token_for

pytestmark = pytest.mark.timeout(1200)
REPO = Path(__file__).resolve().parents[2]
CUSTOMER, AGENT, ADMIN, DEVELOPER = ("hana.hr@keel.dev", "sam.support@keel.dev", "erin.exec@keel.dev",
                                     "alice.engineer@keel.dev")
PRICE_PER_TOKEN = 0.001
MAX_TOKENS = 5
LEASE_S = 6
FIGURES: dict = {}


class Replica:
    def __init__(self, name: str, env: dict, log_dir: Path):
        self.name, self.port = name, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log_dir / f"replica-{name}.log"
        self.proc = subprocess.Popen([sys.executable, "-m", "core.cli", "serve", "--port", str(self.port)],
                                     cwd=REPO, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_up(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"replica {self.name} exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/api/health", timeout=5).status_code in (200, 503):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"replica {self.name} did not answer in {timeout:g} s: {self.log.read_text()[-3000:]}")

    def call(self, method: str, path: str, token: str, **kw) -> httpx.Response:
        return httpx.request(method, f"{self.url}{path}", headers={"authorization": f"Bearer {token}"},
                             timeout=60, **kw)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@pytest.fixture(scope="module")
def cluster(postgres_url, tmp_path_factory):
    import psycopg

    from core.idp import DevIdentityProvider

    home = tmp_path_factory.mktemp("replicas") / "keel"
    name = f"r_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url.replace("postgresql+psycopg", "postgresql") + "/postgres",
                         autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    idp = DevIdentityProvider(port=free_port()).start()
    model = FaultServer(answer="Paris is the capital of France. Merci! The sky is blue.", token_delay=0.02)
    model.prompt_tokens = "bytes"
    model.token_delay_all = True
    model.__enter__()
    suites = home.parent / "suites.toml"
    cases = home.parent / "qa.jsonl"
    cases.write_text("".join(json.dumps({"id": f"c{i}", "input": f"Question {i}: capital of France?",
                                         "expected": {"contains": ["Paris"]}}) + "\n" for i in range(12)))
    suites.write_text('[qa]\nfeature = "playground"\ntarget = "llm.chat"\ndataset = "qa.jsonl"\n'
                      'scorers = ["contains"]\nmin_score = 0.5\nuses_model = true\n')
    env_keys = {
        "KEEL_HOME": str(home), "KEEL_DATABASE_URL": f"{postgres_url}/{name}", "KEEL_DEV_IDP_PORT": str(idp.port),
        "KEEL_OPENAI_BASE_URL": model.url, "KEEL_TIERS": json.dumps({"fast": ["openai/m1"], "capable": ["openai/m1"]}),
        "KEEL_LLM_MAX_RETRIES": "0", "KEEL_SUPPORT_LLM_TRIAGE": "off", "KEEL_EVAL_SUITES": str(suites),
        "KEEL_JOB_LEASE_S": str(LEASE_S), "KEEL_LOG_FLUSH_INTERVAL": "0.05", "HF_HUB_OFFLINE": "1",
    }
    saved = {k: os.environ.get(k) for k in env_keys}
    os.environ.update(env_keys)
    _reset_core()
    from core import services
    from core.auth import create_api_key, ensure_workspace
    from core.llm import save_prices
    from core.support import seed_demo_company

    services.prepare()
    from core.jobs._runner import get_queue

    get_queue()  # the queue's tables, created once here rather than by both replicas racing at start-up
    seed_demo_company(history=False)
    save_prices([{"model": "m1", "input_per_mtok": PRICE_PER_TOKEN * 1e6, "output_per_mtok": PRICE_PER_TOKEN * 1e6}])
    ensure_workspace("loadtest", plan="paid")
    api_key, _ = create_api_key("loadtest", "two-replica test")
    docs = home / "documents"
    corpus = sorted((REPO / "data" / "search" / "corpus").rglob("*.md"))
    for src in corpus[:24]:
        dst = docs / "first" / src.relative_to(REPO / "data" / "search" / "corpus")
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
    env = {**os.environ, **env_keys}
    log_dir = REPO / "test-output"
    log_dir.mkdir(exist_ok=True)
    replicas = [Replica("A", env, log_dir), Replica("B", env, log_dir)]
    try:
        for r in replicas:
            r.wait_up()
        issuer = f"http://localhost:{idp.port}"
        tokens = {who: id_token_for(issuer, who) for who in (CUSTOMER, AGENT, ADMIN, DEVELOPER)}
        yield {"A": replicas[0], "B": replicas[1], "tokens": tokens, "api_key": api_key, "model": model,
               "home": home, "corpus": corpus}
    finally:
        for r in replicas:
            r.stop()
        model.__exit__(None, None, None)
        idp.stop()
        _reset_core()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        (log_dir / "two_replicas.json").write_text(json.dumps(FIGURES, indent=2))
        print("\ntwo-replica figures:", json.dumps(FIGURES, indent=2))


def _poll(fn, timeout: float, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("not seen in time")


def test_support_chat_on_a_and_console_on_b_see_each_other(cluster):
    a, b, tok = cluster["A"], cluster["B"], cluster["tokens"]
    sent = a.call("POST", "/api/support/messages", tok[CUSTOMER],
                  json={"text": "I was charged twice for INV-2026-0008, I want a refund"})
    assert sent.status_code == 200, sent.text
    conversation = sent.json()["conversation_id"]
    t0 = time.monotonic()

    def queued():
        items = b.call("GET", "/api/support/queue", tok[AGENT]).json()["queue"]
        return any(i["conversation_id"] == conversation for i in items)

    _poll(queued, 10)
    to_console = time.monotonic() - t0
    assert b.call("POST", f"/api/support/conversations/{conversation}/claim", tok[AGENT]).status_code == 200
    reply = b.call("POST", f"/api/support/conversations/{conversation}/reply", tok[AGENT],
                   json={"text": "Hello, this is Sam from replica B. I am refunding the duplicate charge."})
    assert reply.status_code == 200, reply.text
    t1 = time.monotonic()
    _poll(lambda: any(m["role"] == "agent" and "replica B" in m["text"] for m in
                      a.call("GET", "/api/support/conversation", tok[CUSTOMER]).json()["messages"]), 10)
    to_customer = time.monotonic() - t1
    assert a.call("POST", "/api/support/messages", tok[CUSTOMER], json={"text": "Thank you, Sam!"}).status_code == 200
    t2 = time.monotonic()
    _poll(lambda: any(m["role"] == "customer" and "Thank you, Sam" in m["text"] for m in
                      b.call("GET", f"/api/support/conversations/{conversation}", tok[AGENT]).json()["messages"]), 10)
    back_to_agent = time.monotonic() - t2
    FIGURES["handoff_latency_s"] = {"customer_A_to_console_B": round(to_console, 3),
                                    "agent_B_to_customer_A": round(to_customer, 3),
                                    "customer_A_to_agent_B": round(back_to_agent, 3)}
    assert max(to_console, to_customer, back_to_agent) < 5


def test_a_search_sync_started_on_a_shows_progress_on_b_and_is_searchable_on_both(cluster):
    a, b, tok = cluster["A"], cluster["B"], cluster["tokens"]
    root = str(cluster["home"] / "documents" / "first")
    started = a.call("POST", "/api/search/sync", tok[ADMIN], json={"root": root})
    assert started.status_code == 200, started.text
    job_id = started.json()["id"]
    seen_on_b = []

    def finished():
        job = b.call("GET", f"/api/jobs/{job_id}", tok[ADMIN]).json()
        if job["status"] == "running" and job["progress"].get("done"):
            seen_on_b.append((job["progress"]["done"], job["progress"]["total"], job["eta_s"]))
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    job = _poll(finished, 300, interval=0.1)
    assert job["status"] == "succeeded", job
    assert seen_on_b, "B never saw the sync running with progress"
    assert job["result"]["scanned"] == 24 and len(job["result"]["added"]) + len(job["result"]["refused"]) == 24
    FIGURES["search_sync"] = {"ran_on": job["worker"], "progress_samples_seen_on_B": len(seen_on_b),
                              "first_seen_on_B": seen_on_b[0], "documents": 24}
    # Searchable on both replicas, through the access-filtered API (retrieval only: no model)
    public = next(p for p in cluster["corpus"][:24] if "all-staff" in p.read_text().split("\n---\n", 1)[0])
    question = public.read_text().split("\n---\n", 1)[-1].strip().splitlines()[0].lstrip("# ")[:120]
    for replica in (a, b):
        answer = replica.call("POST", "/api/search", tok[ADMIN], json={"question": question, "answer": False})
        assert answer.status_code == 200, answer.text
        assert answer.json()["chunks"], f"nothing found on replica {replica.name} for {question!r}"


def test_an_eval_run_started_on_a_appears_on_b(cluster):
    a, b, tok = cluster["A"], cluster["B"], cluster["tokens"]
    started = a.call("POST", "/api/evals/run", tok[DEVELOPER], json={"suite": "qa"})
    assert started.status_code == 200, started.text
    job_id = started.json()["id"]
    t0 = time.monotonic()
    listed = _poll(lambda: [j for j in b.call("GET", "/api/jobs", tok[DEVELOPER]).json()["jobs"] if j["id"] == job_id],
                   10)
    FIGURES["eval_run_visible_on_B_s"] = round(time.monotonic() - t0, 3)
    assert listed[0]["kind"] == "eval_run" and listed[0]["owner"] == DEVELOPER
    again = b.call("POST", "/api/evals/run", tok[DEVELOPER], json={"suite": "qa"}).json()
    assert again["id"] == job_id and again["created"] is False  # one run per suite across replicas
    done = _poll(lambda: (j := b.call("GET", f"/api/jobs/{job_id}", tok[DEVELOPER]).json())["status"]
                 in ("succeeded", "failed") and j, 180, interval=0.2)
    assert done["status"] == "succeeded" and done["result"]["status"] == "passed", done


def test_a_hard_budget_holds_under_20_concurrent_calls_over_both_replicas(cluster):
    from sqlalchemy import text

    from core import db
    from core.llm import save_budgets

    a, b, key, model = cluster["A"], cluster["B"], cluster["api_key"], cluster["model"]
    content = "the quick brown fox " * 30  # 600 bytes: the model bills one prompt token per byte
    with db.get_engine().connect() as conn:
        before = float(conn.execute(text("SELECT COALESCE(SUM(cost_usd), 0) FROM log_rollup_customer"
                                         " WHERE customer = 'loadtest'")).scalar())
    one_call_real = (len(content.encode()) + 4 + MAX_TOKENS) * PRICE_PER_TOKEN
    hard = round(before + one_call_real * 6.5, 6)
    save_budgets([{"scope": "customer", "key": "loadtest", "hard_usd": hard}])
    time.sleep(5.5)  # each replica caches budget definitions for 5 s
    served_before = len(model.requests)
    outcomes: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(20)

    def call(i: int) -> None:
        replica = (a, b)[i % 2]
        barrier.wait()
        r = httpx.post(f"{replica.url}/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                       json={"model": "fast", "max_tokens": MAX_TOKENS,
                             "messages": [{"role": "user", "content": content}]}, timeout=120)
        with lock:
            outcomes.append(r.status_code)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    time.sleep(1.0)
    with db.get_engine().connect() as conn:
        spent = float(conn.execute(text("SELECT COALESCE(SUM(cost_usd), 0) FROM log_rollup_customer"
                                        " WHERE customer = 'loadtest'")).scalar())
        holds = conn.execute(text("SELECT COUNT(*) FROM budget_hold")).scalar()
    accepted = outcomes.count(200)
    FIGURES["budget"] = {"calls": 20, "accepted": accepted, "refused_429": outcomes.count(429),
                         "hard_usd": hard, "spent_usd": round(spent, 6),
                         "overshoot_usd": round(max(0.0, spent - hard), 6), "holds_left": holds}
    assert len(outcomes) == 20 and set(outcomes) <= {200, 429}, outcomes
    assert 1 <= accepted < 20 and accepted == len(model.requests) - served_before
    assert spent <= hard + 1e-9 and holds == 0


def test_killing_the_replica_running_a_job_leaves_it_retried_never_running(cluster):
    a, b, tok = cluster["A"], cluster["B"], cluster["tokens"]
    second = cluster["home"] / "documents" / "second"
    for src in cluster["corpus"][24:]:
        dst = second / src.relative_to(REPO / "data" / "search" / "corpus")
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
    started = a.call("POST", "/api/search/sync", tok[ADMIN], json={"root": str(second)})
    assert started.status_code == 200, started.text
    job_id = started.json()["id"]
    job = _poll(lambda: (j := a.call("GET", f"/api/jobs/{job_id}", tok[ADMIN]).json())["status"] == "running"
                and (j["progress"].get("done") or 0) >= 2 and j, 120, interval=0.05)
    pid = int(job["worker"].split(":")[1])
    victim, survivor = (a, b) if pid == a.proc.pid else (b, a)
    assert pid == victim.proc.pid, (pid, a.proc.pid, b.proc.pid)
    os.killpg(victim.proc.pid, signal.SIGKILL)  # no shutdown hook: the lease is all that is left
    victim.proc.wait(10)
    killed_at = time.monotonic()
    states = []

    def recovered():
        j = survivor.call("GET", f"/api/jobs/{job_id}", tok[ADMIN]).json()
        states.append(j["status"])
        return j if j["worker"] != job["worker"] or j["status"] in ("failed", "succeeded") else None

    moved = _poll(recovered, LEASE_S * 4, interval=0.2)
    recovery_s = time.monotonic() - killed_at
    final = _poll(lambda: (j := survivor.call("GET", f"/api/jobs/{job_id}", tok[ADMIN]).json())["status"]
                  in ("succeeded", "failed") and j, 300, interval=0.5)
    FIGURES["kill_mid_job"] = {"killed": victim.name, "lease_s": LEASE_S, "recovered_after_s": round(recovery_s, 2),
                               "state_after_recovery": moved["status"], "final": final["status"],
                               "attempts": final["attempts"]}
    assert final["status"] == "succeeded" and final["attempts"] == 2, final  # resumed on the survivor
    assert recovery_s < LEASE_S * 3
