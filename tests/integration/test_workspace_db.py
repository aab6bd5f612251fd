"""Workspaces on SQLite and PostgreSQL: membership, documents, and credits (race, refund, month reset, quota)."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlmodel import func, select

from core import config, db
from core.auth import Principal
from core.llm import CancelToken, LLMCancelled, LLMError, get_gateway, set_gateway
from core.tables import RequestLog, WorkspaceCredit
from core.workspace import (
    CreditsExhausted,
    DocumentConflict,
    DocumentNotFound,
    EmptySelection,
    NotAMember,
    UnknownTask,
    WorkspaceError,
    add_member,
    create_document,
    credit_status,
    delete_document,
    ensure_member,
    get_document,
    list_documents,
    list_members,
    personal_workspace_id,
    release_stale_reservations,
    remove_member,
    rename_document,
    reserve_credit,
    run_task,
    set_plan,
    update_document,
    usage_by_member,
    workspaces_for,
)
from tests.support.fault_server import closed_port

pytestmark = pytest.mark.timeout(120)

ALICE = Principal(sub="alice@keel.dev", email="alice@keel.dev", name="Alice")
BOB = Principal(sub="bob@keel.dev", email="bob@keel.dev", name="Bob")
JAN = datetime(2025, 1, 31, 23, 59, 59, tzinfo=UTC)
FEB = datetime(2025, 2, 1, 0, 0, 0, tzinfo=UTC)


def clock(moment):
    return lambda: moment


@pytest.fixture
def team(database):
    """Workspace 'team' (free plan): alice is admin, carol a member; bob belongs to nothing here."""
    ensure_member("team", ALICE.sub, "admin", name="Team")
    ensure_member("team", "carol@keel.dev", "member")
    return "team"


@pytest.fixture
def dead_llm(monkeypatch):
    """Every tier points at a closed loopback port: any LLM call fails fast and writes an error row."""
    monkeypatch.setenv("KEEL_PROVIDERS", json.dumps(
        {"dead": {"kind": "openai", "base_url": f"http://127.0.0.1:{closed_port()}/v1", "api_key": "k"}}))
    monkeypatch.setenv("KEEL_TIERS", json.dumps({t: ["dead/m"] for t in ("fast", "capable", "code")}))
    monkeypatch.setenv("KEEL_LLM_MAX_RETRIES", "0")
    monkeypatch.setenv("KEEL_LOG_FLUSH_INTERVAL", "0.02")
    config.reset_settings()
    old = set_gateway(None)
    if old is not None:
        old.log.close()
    yield get_gateway()


def log_rows() -> list[RequestLog]:
    get_gateway().log.flush()
    with db.session() as s:
        return list(s.exec(select(RequestLog).order_by(RequestLog.id)).all())


# -- membership ---------------------------------------------------------------------------------------


def test_new_user_gets_one_personal_workspace_even_when_racing(database):
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: workspaces_for(ALICE), range(8)))
    assert all(r == results[0] for r in results)
    (ws,) = results[0]
    assert ws.id == personal_workspace_id(ALICE.sub) and ws.personal and ws.role == "admin"
    assert ws.plan == "free" and ws.name == "Alice's workspace"
    ensure_member("team", ALICE.sub, "member", name="Team")
    assert [w.id for w in workspaces_for(ALICE)] == [ws.id, "team"]  # personal first
    assert [w.id for w in workspaces_for(BOB)] == [personal_workspace_id(BOB.sub)]  # nobody sees others'


def test_api_key_principal_sees_only_its_own_workspace(team):
    key = Principal(sub="apikey:keel_sk_ab", workspace="team")
    assert [w.id for w in workspaces_for(key)] == ["team"]
    doc = create_document(key, "team", "From the API")
    assert get_document(ALICE, doc.id).created_by == "apikey:keel_sk_ab"
    with pytest.raises(NotAMember):
        list_documents(key, personal_workspace_id(ALICE.sub))


def test_only_admins_manage_members_and_plan(team):
    with pytest.raises(NotAMember, match="only admins"):
        add_member("carol@keel.dev", "team", BOB.sub)
    with pytest.raises(NotAMember, match="only admins"):
        set_plan("carol@keel.dev", "team", "paid")
    add_member(ALICE, "team", BOB.sub)
    assert {m.user_sub: m.role for m in list_members(BOB, "team")} == {
        ALICE.sub: "admin", BOB.sub: "member", "carol@keel.dev": "member"}
    with pytest.raises(WorkspaceError, match="at least one admin"):
        remove_member(ALICE, "team", ALICE.sub)
    assert set_plan(ALICE, "team", "paid").plan == "paid"
    with pytest.raises(WorkspaceError, match="plan must be one of"):
        set_plan(ALICE, "team", "platinum")
    assert remove_member(ALICE, "team", BOB.sub) is True
    with pytest.raises(NotAMember):
        list_documents(BOB, "team")


# -- documents --------------------------------------------------------------------------------------------


def test_documents_crud_round_trip(team):
    a = create_document(ALICE, "team", "  Meeting\nnotes ", "# Agenda\n- budget\n")
    b = create_document("carol@keel.dev", "team", "Draft", "x\x00y")
    assert a.title == "Meeting notes" and a.version == 1 and a.created_by == ALICE.sub
    assert get_document(ALICE, b.id).content == "x\ufffdy"  # NUL cannot live in PostgreSQL text
    assert [d.id for d in list_documents(ALICE, "team")] == [b.id, a.id]  # newest edit first

    edited = update_document("carol@keel.dev", a.id, content="# Agenda\n- budget\n- venue\n", expected_version=1)
    assert edited.version == 2 and edited.updated_by == "carol@keel.dev" and edited.content.endswith("venue\n")
    with pytest.raises(DocumentConflict, match="now version 2") as err:
        update_document(ALICE, a.id, content="stale edit", expected_version=1)
    assert err.value.current_version == 2
    assert get_document(ALICE, a.id).content.endswith("venue\n")  # the stale write changed nothing

    renamed = rename_document(ALICE, a.id, "Weekly sync")
    assert (renamed.title, renamed.version, renamed.content) == ("Weekly sync", 3, edited.content)
    assert [d.title for d in list_documents(ALICE, "team")][0] == "Weekly sync"

    delete_document(ALICE, b.id)
    with pytest.raises(DocumentNotFound):
        get_document(ALICE, b.id)
    assert [d.id for d in list_documents(ALICE, "team")] == [a.id]
    # survives a new engine (a restart)
    db.dispose_engine()
    assert get_document(ALICE, a.id).title == "Weekly sync"


@pytest.mark.parametrize("title, message", [("", "needs a title"), ("  \n ", "needs a title"),
                                            ("x" * 201, "at most 200")])
def test_bad_titles_are_refused(team, title, message):
    with pytest.raises(WorkspaceError, match=message):
        create_document(ALICE, "team", title)


@pytest.mark.parametrize("doc_id", [0, -1, 2**40, "abc", None])
def test_unknown_document_ids_are_not_found(team, doc_id):
    with pytest.raises(DocumentNotFound):
        get_document(ALICE, doc_id)


def test_non_members_cannot_read_or_write_documents(team):
    doc = create_document(ALICE, "team", "Secret plan", "launch on Monday")
    for attempt in (
        lambda: list_documents(BOB, "team"),
        lambda: create_document(BOB, "team", "intruder"),
        lambda: get_document(BOB, doc.id),
        lambda: update_document(BOB, doc.id, content="defaced"),
        lambda: rename_document(BOB, doc.id, "defaced"),
        lambda: delete_document(BOB, doc.id),
        lambda: list_documents(BOB, "no-such-workspace"),
    ):
        with pytest.raises(PermissionError, match="is not a member of workspace"):
            attempt()
    with pytest.raises(NotAMember):
        run_task(BOB, "team", "summarize", "launch on Monday")
    assert get_document(ALICE, doc.id).content == "launch on Monday" and get_document(ALICE, doc.id).version == 1
    assert [d.title for d in list_documents(ALICE, "team")] == ["Secret plan"]


# -- credits -------------------------------------------------------------------------------------------------


def test_free_plan_has_twenty_per_month_then_a_clear_error(team):
    lefts = [reserve_credit("team", ALICE.sub if i % 2 else "carol@keel.dev", "summarize", clock=clock(JAN))
             .credits_left for i in range(20)]
    assert lefts == list(range(19, -1, -1))
    with pytest.raises(CreditsExhausted) as err:
        reserve_credit("team", ALICE.sub, "summarize", clock=clock(JAN))
    assert err.value.resets_on.isoformat() == "2025-02-01" and "1 February 2025" in str(err.value)
    status = credit_status("team", clock=clock(JAN))
    assert (status.used, status.left, status.exhausted) == (20, 0, True)
    usage = {u.user_sub: (u.spent, u.in_flight) for u in usage_by_member(ALICE, "team", clock=clock(JAN))}
    assert usage == {ALICE.sub: (0, 10), "carol@keel.dev": (0, 10)}  # reserved, never settled here
    with pytest.raises(NotAMember, match="only admins"):
        usage_by_member("carol@keel.dev", "team")


def test_a_new_month_resets_the_credits(team):
    for _ in range(20):
        reserve_credit("team", ALICE.sub, "explain", clock=clock(JAN))
    with pytest.raises(CreditsExhausted):
        reserve_credit("team", ALICE.sub, "explain", clock=clock(JAN))
    feb = reserve_credit("team", ALICE.sub, "explain", clock=clock(FEB))
    assert feb.month == "2025-02" and feb.credits_left == 19
    assert credit_status("team", clock=clock(FEB)).used == 1
    assert credit_status("team", clock=clock(JAN)).used == 20  # January's record is kept


def test_paid_plan_is_unlimited_but_still_counted_per_member(team):
    set_plan(ALICE, "team", "paid")
    for _ in range(25):
        assert reserve_credit("team", "carol@keel.dev", "fix_grammar", clock=clock(JAN)).credits_left is None
    status = credit_status("team", clock=clock(JAN))
    assert (status.limit, status.left, status.used) == (None, None, 25)
    assert usage_by_member(ALICE, "team", month="2025-01")[0].user_sub == "carol@keel.dev"


def test_fifty_members_racing_for_the_last_credit_exactly_one_wins(team):
    for _ in range(19):
        reserve_credit("team", ALICE.sub, "summarize", clock=clock(JAN))
    barrier = threading.Barrier(50)

    def attempt(i: int):
        barrier.wait(timeout=30)
        try:
            return reserve_credit("team", f"racer-{i}", "summarize", clock=clock(JAN))
        except CreditsExhausted:
            return None

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(attempt, range(50)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0].credits_left == 0
    assert credit_status("team", clock=clock(JAN)).used == 20
    with db.session() as s:
        rows = s.exec(select(WorkspaceCredit.user_sub).where(WorkspaceCredit.workspace_id == "team")).all()
    assert len(rows) == 20 and sum(r.startswith("racer-") for r in rows) == 1


def test_thirty_racing_for_a_fresh_months_twenty_credits_exactly_twenty_win(team):
    barrier = threading.Barrier(30)

    def attempt(i: int):
        barrier.wait(timeout=30)
        try:
            return reserve_credit("team", f"racer-{i}", "explain", clock=clock(FEB)).credits_left
        except CreditsExhausted:
            return None

    with ThreadPoolExecutor(30) as pool:
        lefts = list(pool.map(attempt, range(30)))
    assert sorted(x for x in lefts if x is not None) == list(range(20))  # each remaining count handed out once
    assert lefts.count(None) == 10 and credit_status("team", clock=clock(FEB)).used == 20


def test_refund_is_idempotent_and_stale_reservations_are_released(team):
    from core.workspace import refund_credit

    r = reserve_credit("team", ALICE.sub, "explain", clock=clock(JAN))
    assert refund_credit(r) is True and refund_credit(r) is False
    assert credit_status("team", clock=clock(JAN)).used == 0
    reserve_credit("team", ALICE.sub, "explain", clock=clock(JAN))
    assert release_stale_reservations(older_than_s=3600) == 0  # fresh: a call may still be running
    assert release_stale_reservations(older_than_s=-1) == 1
    assert credit_status("team", clock=clock(JAN)).used == 0


# -- run_task without a model ----------------------------------------------------------------------------------


def test_a_failed_llm_call_gives_its_credit_back(team, dead_llm):
    run = run_task(ALICE, "team", "fix_grammar", "Their going too the shop.", clock=clock(JAN))
    assert run.credits_left == 19  # reserved before the call
    with pytest.raises(LLMError, match="all targets failed"):
        list(run)
    assert credit_status("team", clock=clock(JAN)).used == 0
    rows = log_rows()
    assert len(rows) == 1 and rows[0].status == "error" and "connection failed" in rows[0].error
    row = rows[0]
    assert (row.feature, row.task, row.customer, row.user) == ("workspace", "fix_grammar", "team", ALICE.sub)
    assert row.prompt_id == "workspace/fix_grammar" and row.prompt_version == run.task.prompt.version
    with db.session() as s:
        credit = s.exec(select(WorkspaceCredit)).one()
    assert credit.status == "refunded" and credit.request_id == row.request_id and credit.user_sub == ALICE.sub


def test_cancelled_and_abandoned_runs_give_their_credit_back(team, dead_llm):
    cancel = CancelToken()
    run = run_task(ALICE, "team", "explain", "Entropy always increases.", cancel=cancel, clock=clock(JAN))
    cancel.cancel()
    with pytest.raises(LLMCancelled):
        list(run)
    never_iterated = run_task(ALICE, "team", "explain", "Entropy.", clock=clock(JAN))
    assert credit_status("team", clock=clock(JAN)).used == 1
    never_iterated.close()
    with run_task(ALICE, "team", "explain", "Entropy.", clock=clock(JAN)):
        pass
    assert credit_status("team", clock=clock(JAN)).used == 0
    with db.session() as s:
        statuses = s.exec(select(WorkspaceCredit.status)).all()
    assert statuses == ["refunded"] * 3


def test_text_of_a_run_closed_unfinished_is_a_clear_error(team, dead_llm):
    run = run_task(ALICE, "team", "explain", "Entropy.", clock=clock(JAN))
    run.close()
    with pytest.raises(RuntimeError, match="closed before it finished"):
        run.text()  # it used to fail with "'NoneType' object has no attribute 'text'"
    assert credit_status("team", clock=clock(JAN)).used == 0


def test_spent_quota_stops_the_call_before_the_llm_with_the_reset_date(team, dead_llm):
    for _ in range(20):
        reserve_credit("team", "carol@keel.dev", "summarize", clock=clock(JAN))
    before = len(log_rows())
    with pytest.raises(CreditsExhausted, match=r"reset on 1 February 2025 \(2025-02-01"):
        run_task(ALICE, "team", "summarize", "A long report about budgets.", clock=clock(JAN))
    assert len(log_rows()) == before == 0  # no LLM call was made, so nothing was logged
    assert credit_status("team", clock=clock(JAN)).used == 20


def test_bad_input_spends_nothing_and_calls_nothing(team, dead_llm):
    for attempt, error in (
        (lambda: run_task(ALICE, "team", "fix_grammar", "   "), EmptySelection),
        (lambda: run_task(ALICE, "team", "rewrite_everything", "text"), UnknownTask),
        (lambda: run_task(ALICE, "team", "translate", "hi", params={"language": "Klingon"}), WorkspaceError),
        (lambda: run_task(ALICE, "team", "fix_grammar", "x" * 50_000), WorkspaceError),
    ):
        with pytest.raises(error):
            attempt()
    assert credit_status("team").used == 0 and log_rows() == []
    with db.get_engine().connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM workspace_credit")).scalar() == 0
    with db.session() as s:
        assert s.exec(select(func.count()).select_from(WorkspaceCredit)).one() == 0
