"""Reviews in SQL on SQLite and PostgreSQL: the cache by diff hash, dismissals remembered per repository (not
raised again, also after the code moves), accept, undo, and concurrent identical reviews."""

from __future__ import annotations

import threading
import time

import pytest
from sqlmodel import func, select

from core import db
from core.review import (
    DEMO_REPO,
    ReviewOptions,
    accept,
    cached_review_result,
    decisions,
    dismiss,
    recent_reviews,
    review_diff,
    review_sample,
    get_sample,
    undo_decision,
)
from core.tables import JobRow, ReviewComment, ReviewRun

pytestmark = pytest.mark.timeout(180)
TOOLS = ReviewOptions(use_llm=False)


def test_an_identical_diff_is_served_from_the_cache(database):
    first = review_sample("06_prompt_injection", TOOLS)
    assert not first.cached and first.id
    started = time.perf_counter()
    again = review_sample("06_prompt_injection", TOOLS)
    elapsed = time.perf_counter() - started
    assert again.cached and again.id == first.id and elapsed < first.wall_ms / 1000 + 0.5
    assert [(c.path, c.line, c.severity, c.message) for c in again.comments] == \
        [(c.path, c.line, c.severity, c.message) for c in first.comments]
    assert any("Served from the review cache" in n for n in again.notices)
    assert again.timeline == first.timeline  # the original run's timeline, kept with it
    crlf = review_diff(get_sample("06_prompt_injection").diff.replace("\n", "\r\n"), DEMO_REPO, TOOLS)
    assert crlf.cached
    fresh = review_sample("06_prompt_injection", ReviewOptions(use_llm=False, use_cache=False))
    assert not fresh.cached
    with db.session() as s:
        assert s.exec(select(func.count()).select_from(ReviewRun)).one() == 1  # replaced, not duplicated
    changed = review_diff(get_sample("06_prompt_injection").diff.replace("day ORDER BY day", "day"), DEMO_REPO,
                          TOOLS)
    assert not changed.cached
    assert [r["verdict"] for r in recent_reviews()][:2] == ["request_changes", "request_changes"]


def test_a_reviewed_diff_comes_from_the_cache_without_a_job(database):
    """The page's Re-run looks the cache up itself: it must not wait for a worker busy with other reviews."""
    request = {"kind": "diff", "diff": get_sample("06_prompt_injection").diff, "repo": str(DEMO_REPO), "label": "x"}
    assert cached_review_result(request, use_llm=False, user="alice@keel.dev") is None  # not reviewed yet
    first = review_sample("06_prompt_injection", TOOLS)
    hit = cached_review_result(request, use_llm=False, user="alice@keel.dev")
    assert hit is not None and hit.cached and hit.id == first.id
    assert [c.fingerprint for c in hit.comments] == [c.fingerprint for c in first.comments]
    assert any("Served from the review cache" in n for n in hit.notices)
    assert cached_review_result(request, use_llm=True, user="alice@keel.dev") is None  # another tier: not this review
    dismiss(first, first.comments[0], user="alice@keel.dev")
    after = cached_review_result(request, use_llm=False, user="alice@keel.dev")
    assert after is not None and first.comments[0].fingerprint not in {c.fingerprint for c in after.comments}
    # bad requests are a miss (the job, if queued, reports them in its own words), never an exception
    for bad in ({"kind": "diff", "diff": b"\xff\xfe\x00binary", "repo": str(DEMO_REPO)},
                {"kind": "diff", "diff": "", "repo": str(DEMO_REPO)},
                {"kind": "diff", "diff": "'; DROP TABLE review_run; --", "repo": str(DEMO_REPO)},
                {"kind": "diff", "diff": request["diff"], "repo": "../../etc"},
                {"kind": "refs", "repo": "/etc", "base": None, "head": "HEAD"},
                {"kind": "diff"}):
        assert cached_review_result(bad, use_llm=False, user=None) is None
    with db.session() as s:
        assert s.exec(select(func.count()).select_from(JobRow)).one() == 0  # no job was queued for any of it
        assert s.exec(select(func.count()).select_from(ReviewRun)).one() == 1


def test_dismissed_comments_are_not_raised_again(database):
    first = review_sample("03_swallowed_exception", TOOLS)
    target = next(c for c in first.comments if c.line == 42 and c.category == "correctness")
    others = [c.fingerprint for c in first.comments if c is not target]
    dismiss(first, target, user="alice@keel.dev")
    assert decisions("demo:shopline") == {target.fingerprint: "dismissed"}

    cached = review_sample("03_swallowed_exception", TOOLS)  # cache hit: filtered on read
    assert cached.cached and target.fingerprint not in {c.fingerprint for c in cached.comments}
    assert [c.fingerprint for c in cached.comments] == others
    assert cached.stats["dismissed_suppressed"] == 1

    rerun = review_sample("03_swallowed_exception", ReviewOptions(use_llm=False, use_cache=False))
    assert target.fingerprint not in {c.fingerprint for c in rerun.comments}
    assert rerun.stats["dismissed_suppressed"] == 1

    # the same code two lines further down (the PR also adds a comment at the top): still dismissed
    top = ('@@ -1,3 +1,5 @@\n """Orders: create them, price them, list them."""\n+\n+# Orders are never deleted.\n'
           ' \n from datetime import datetime, timezone\n')
    moved = get_sample("03_swallowed_exception").diff.replace("@@ -37,5 +37,8 @@", top + "@@ -37,5 +39,8 @@")
    shifted = review_diff(moved, DEMO_REPO, TOOLS)
    assert not shifted.cached and shifted.stats["dismissed_suppressed"] == 1
    assert all(c.fingerprint != target.fingerprint and c.line != 44 for c in shifted.comments)

    assert undo_decision("demo:shopline", target.fingerprint)
    back = review_sample("03_swallowed_exception", TOOLS)
    assert target.fingerprint in {c.fingerprint for c in back.comments}


def test_accepted_comments_stay_and_show_their_status(database):
    first = review_sample("01_sql_injection", TOOLS)
    accept(first, first.comments[0], user="alice@keel.dev")
    again = review_sample("01_sql_injection", TOOLS)
    assert [c.status for c in again.comments] == ["accepted"]
    dismiss(again, again.comments[0])  # a later decision replaces the earlier one
    assert decisions("demo:shopline") == {first.comments[0].fingerprint: "dismissed"}
    assert review_sample("01_sql_injection", TOOLS).comments == []


def test_concurrent_identical_reviews_store_one_row(database):
    results, errors = [], []

    def work():
        try:
            results.append(review_sample("02_off_by_one", ReviewOptions(use_llm=False)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert {r.comments[0].line for r in results} == {30}
    with db.session() as s:
        assert s.exec(select(func.count()).select_from(ReviewRun)).one() == 1
        review_id = s.exec(select(ReviewRun.id)).one()
        assert s.exec(select(func.count()).select_from(ReviewComment)
                      .where(ReviewComment.review_id == review_id)).one() == 1
