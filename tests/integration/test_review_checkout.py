"""Issue 15: a review works whichever side of the PR the repository is checked out at — the base (a developer)
or the head (every CI job) — and from two git refs (`origin/main...HEAD`); the CLI reviews the user's own
repository outside KEEL_REVIEW_ROOTS while the server's check keeps its roots.

The held-out PR plants three bugs (an f-string SQL query, `range(len(orders) - 1)`, a bare `except`) in a real git
repository; each test asserts all three are found on their lines and that nothing was "rebuilt from the diff".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.review import RepoNotAllowed, ReviewError, ReviewOptions, cached_review, review_diff, review_refs

pytestmark = pytest.mark.timeout(300)
TOOLS_ONLY = ReviewOptions(use_llm=False, use_cache=False)
ROOT = Path(__file__).resolve().parents[2]
ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1",
       "GIT_CONFIG_GLOBAL": "/dev/null", "LANG": "C.UTF-8"}

BASE = '''"""Order reports for the back office."""

import logging

log = logging.getLogger(__name__)


def order_total(orders):
    total = 0
    for order in orders:
        total += order["amount"]
    return total


def customer_orders(conn, customer_id):
    rows = conn.execute("SELECT id, amount FROM orders WHERE customer_id = ?", (customer_id,))
    return [dict(row) for row in rows.fetchall()]
'''

HEAD = '''"""Order reports for the back office."""

import logging

log = logging.getLogger(__name__)


def order_total(orders):
    total = 0
    for i in range(len(orders) - 1):
        total += orders[i]["amount"]
    return total


def customer_orders(conn, customer_id, status):
    query = f"SELECT id, amount FROM orders WHERE customer_id = {customer_id} AND status = '{status}'"
    try:
        rows = conn.execute(query)
    except:
        return []
    return [dict(row) for row in rows.fetchall()]
'''
PLANTED = {(10, "correctness"), (16, "security"), (19, "correctness")}


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args], cwd=repo, env=ENV,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture
def shop(keel_home) -> tuple[Path, str]:
    """A git repository: main with the base file; branch `pr` with the planted bugs; returns (repo, the PR diff)."""
    repo = keel_home / "shop"
    (repo / "shop").mkdir(parents=True)
    (repo / "shop" / "reports.py").write_text(BASE)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "update-ref", "refs/remotes/origin/main", "main")
    git(repo, "checkout", "-q", "-b", "pr")
    (repo / "shop" / "reports.py").write_text(HEAD)
    git(repo, "commit", "-q", "-a", "-m", "planted bugs")
    return repo, git(repo, "diff", "main", "pr")


def found(result) -> set[tuple[int, str]]:
    return {(c.line, c.category) for c in result.comments if c.severity in ("blocker", "major")}


def rebuilt(result) -> bool:
    return any("rebuilt from the diff" in n for n in result.notices)


def test_planted_bugs_found_with_the_repository_at_the_head(shop):
    repo, diff = shop  # checked out at `pr`: the CI way
    result = review_diff(diff, repo, TOOLS_ONLY)
    assert PLANTED <= found(result), [(c.line, c.category, c.rule) for c in result.comments]
    assert not rebuilt(result) and any("at the PR's head" in n for n in result.notices)
    off_by_one = next(c for c in result.comments if c.line == 10)
    assert "last element" in off_by_one.message and "range(len(orders) - 1)" in off_by_one.message


def test_planted_bugs_found_with_the_repository_at_the_base(shop):
    repo, diff = shop
    git(repo, "checkout", "-q", "main")
    result = review_diff(diff, repo, TOOLS_ONLY)
    assert PLANTED <= found(result)
    assert not rebuilt(result) and not any("at the PR's head" in n for n in result.notices)
    assert (repo / "shop" / "reports.py").read_text() == BASE  # the checkout itself is never written


def test_refs_default_to_origin_main_three_dots_head(shop):
    repo, _ = shop
    git(repo, "checkout", "-q", "main")
    (repo / "shop" / "other.py").write_text("X = 1\n")  # main moves on after the PR branched: not the PR's change
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "main moves on")
    git(repo, "update-ref", "refs/remotes/origin/main", "main")
    git(repo, "checkout", "-q", "pr")
    result = review_refs(repo, None, "HEAD", TOOLS_ONLY)
    assert PLANTED <= found(result)
    assert [f["path"] for f in result.files] == ["shop/reports.py"]  # merge-base...HEAD, not main..HEAD
    assert not rebuilt(result)
    # the page's Re-run finds this review in the cache by the same refs, without a job
    hit = cached_review(None, repo, TOOLS_ONLY, refs=(None, "HEAD"))
    assert hit is not None and hit.cached and found(hit) == found(result)
    with pytest.raises(ReviewError, match="no differences"):  # said as plainly as the review itself says it
        cached_review(None, repo, TOOLS_ONLY, refs=("pr", "HEAD"))


def test_a_diff_that_matches_neither_side_says_so(shop, keel_home):
    repo, diff = shop
    (repo / "shop" / "reports.py").write_text("# something else entirely\n")
    result = review_diff(diff, repo, TOOLS_ONLY)
    assert any("matches neither the base nor the head" in n for n in result.notices)


def test_the_cli_reviews_its_users_own_repository_outside_the_roots(tmp_path):
    repo = tmp_path / "elsewhere" / "shop"  # outside KEEL_HOME and the demo folder: not an allowed root
    (repo / "shop").mkdir(parents=True)
    (repo / "shop" / "reports.py").write_text(BASE)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "checkout", "-q", "-b", "pr")
    (repo / "shop" / "reports.py").write_text(HEAD)
    git(repo, "commit", "-q", "-a", "-m", "planted")
    env = {**os.environ, "KEEL_HOME": str(tmp_path / "k"), "HF_HUB_OFFLINE": "1"}
    env.pop("KEEL_DATABASE_URL", None)
    env.pop("KEEL_REVIEW_ROOTS", None)
    out = subprocess.run([sys.executable, "-m", "core.cli", "review", "--repo", str(repo), "--base", "main",
                          "--no-llm", "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    assert PLANTED <= {(c["line"], c["category"]) for c in payload["comments"]}
    ranged = subprocess.run([sys.executable, "-m", "core.cli", "review", "--repo", str(repo), "--range",
                             "main...pr", "--no-llm", "--json", "--no-cache"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=180)
    assert ranged.returncode == 0 and json.loads(ranged.stdout)["verdict"] == "request_changes"


def test_the_server_path_keeps_its_roots(tmp_path, keel_home):
    outside = tmp_path / "outside"
    outside.mkdir()
    with pytest.raises(RepoNotAllowed, match="outside the allowed roots"):
        review_diff("--- a/x.py\n+++ b/x.py\n@@ -0,0 +1 @@\n+x = 1\n", outside, TOOLS_ONLY)
