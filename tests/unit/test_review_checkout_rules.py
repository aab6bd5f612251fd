"""Issue 15 units: which side a file is checked out at, findings on multi-line statements, removed guards, and
index arithmetic against the indexing in the loop body."""

from __future__ import annotations

from core.review._checkout import Side, file_side
from core.review._comments import Comment, finish, keep_added_lines
from core.review._diff import parse_diff
from core.review._rules import analyse_python, linter_comment, removed_guards

DIFF = """--- a/m.py
+++ b/m.py
@@ -1,4 +1,4 @@
 def f(x):
-    return x + 1
+    return x + 2
 
 y = f(1)
"""
BASE = ["def f(x):", "    return x + 1", "", "y = f(1)"]
HEAD = ["def f(x):", "    return x + 2", "", "y = f(1)"]


def test_a_file_at_the_base_gets_the_diff_applied():
    side, lines = file_side(BASE, parse_diff(DIFF).files[0])
    assert side is Side.BASE and lines == HEAD


def test_a_file_at_the_head_is_read_as_it_is():
    side, lines = file_side(HEAD, parse_diff(DIFF).files[0])
    assert side is Side.HEAD and lines == HEAD


def test_an_added_file_present_at_the_head_and_pure_additions():
    added = parse_diff("--- /dev/null\n+++ b/n.py\n@@ -0,0 +1,2 @@\n+a = 1\n+b = 2\n").files[0]
    assert file_side(["a = 1", "b = 2"], added)[0] is Side.HEAD
    assert file_side(None, added) == (Side.BASE, ["a = 1", "b = 2"])
    tail = parse_diff("--- a/t.py\n+++ b/t.py\n@@ -1,2 +1,3 @@\n a = 1\n b = 2\n+c = 3\n").files[0]
    assert file_side(["a = 1", "b = 2"], tail) == (Side.BASE, ["a = 1", "b = 2", "c = 3"])
    assert file_side(["a = 1", "b = 2", "c = 3"], tail) == (Side.HEAD, ["a = 1", "b = 2", "c = 3"])


def test_a_file_matching_neither_side():
    assert file_side(["something else"], parse_diff(DIFF).files[0])[0] is Side.NEITHER


def test_a_finding_spanning_lines_lands_on_the_first_added_line():
    bandit = linter_comment({"path": "q.py", "tool": "bandit", "line": 3, "end_line": 5, "code": "B608",
                             "message": "Possible SQL injection", "severity": "MEDIUM", "confidence": "MEDIUM"})
    kept, dropped = keep_added_lines([bandit], {"q.py": {4: "    'WHERE x = ' + x)"}})
    assert dropped == 0 and kept[0].line == 4
    outside = Comment(path="q.py", line=1, severity="major", category="security", message="m", end_line=2)
    assert keep_added_lines([outside], {"q.py": {4: "x"}}) == ([], 1)


def test_a_statement_changed_only_by_a_removed_line_keeps_its_finding():
    diff = parse_diff("--- a/t.py\n+++ b/t.py\n@@ -1,4 +1,3 @@\n env = Environment(\n     loader=x,\n"
                      "-    autoescape=True,\n )\n").files[0]
    assert diff.after_removals == {3: ")"}
    finding = Comment(path="t.py", line=1, severity="major", category="security", message="autoescape off (B701)",
                      rule="bandit:B701", end_line=3, suggestion="Turn autoescape on.")
    kept, _ = finish([finding], {"t.py": diff.reviewable}, removals={"t.py": diff.after_removals})
    assert [c.line for c in kept] == [3]


def test_sql_built_over_two_lines_with_an_unchanged_first_line():
    source = 'def f(cur, name):\n    q = ("SELECT id FROM t "\n         "WHERE n = \'" + name + "\'")\n' \
             '    cur.execute(q)\n'
    comments = analyse_python(source, {3: "x", 4: "y"}).comments
    assert any(c.rule == "rule:sql-string" and c.line == 3 for c in comments)


def _guards(diff: str):
    return removed_guards(parse_diff(diff).files[0])


def test_removed_guards_are_flagged_on_the_removal():
    auth = _guards("--- a/v.py\n+++ b/v.py\n@@ -1,4 +1,3 @@\n import x\n-@login_required\n def view(request):\n"
                   "     return 1\n")
    [c], anchors = auth
    assert c.line == 2 and anchors == {2: "def view(request):"} and c.severity == "blocker"
    assert "login_required" in c.message
    norm = _guards("--- a/h.py\n+++ b/h.py\n@@ -1,2 +1,2 @@\n def h(r):\n-    name = os.path.normpath(r.name)\n"
                   "+    name = r.name\n")[0]
    assert norm[0].line == 2 and "normpath" in norm[0].message
    escape = _guards("--- a/e.py\n+++ b/e.py\n@@ -1,2 +1,2 @@\n def e(v):\n-    return html.escape(v)\n"
                     "+    return v\n")[0]
    assert "escape" in escape[0].message and "XSS" in escape[0].message
    size = _guards("--- a/s.py\n+++ b/s.py\n@@ -1,4 +1,2 @@\n def up(data):\n-    if len(data) > MAX_UPLOAD_BYTES:\n"
                   "-        raise ValueError('too big')\n     save(data)\n")[0]
    assert "MAX_UPLOAD_BYTES" in size[0].message


def test_a_guard_moved_or_replaced_is_not_flagged():
    moved = _guards("--- a/p.py\n+++ b/p.py\n@@ -1,3 +1,3 @@\n def p(n):\n-    n = os.path.normpath(n)\n"
                    "+    n = _inside(os.path.normpath(n))\n     return n\n")
    assert moved == ([], {})
    stronger = _guards("--- a/p.py\n+++ b/p.py\n@@ -1,2 +1,2 @@\n def p(n):\n-    if '..' in n: raise ValueError\n"
                       "+    if os.path.commonpath([B, os.path.realpath(n)]) != B: raise ValueError\n")
    assert stronger == ([], {})
    regex = _guards("--- a/r.py\n+++ b/r.py\n@@ -1,2 +1,2 @@\n def r(n):\n-    return re.escape(n)\n+    return n\n")
    assert regex == ([], {})


def _off(source: str, lines: set[int]) -> list[str]:
    return [c.message for c in analyse_python(source, {n: "x" for n in lines}).comments if c.rule == "rule:off-by-one"]


def test_index_arithmetic_past_the_end_and_short_of_it():
    drops = _off("def t(xs):\n    s = 0\n    for i in range(len(xs) - 1):\n        s += xs[i]\n    return s\n", {3})
    assert drops and "last element" in drops[0]
    ahead = _off("def t(xs):\n    for i in range(len(xs)):\n        print(xs[i + 1])\n", {2})
    assert ahead and "past the end" in ahead[0]
    bumped = _off("def t(xs, i):\n    while i < len(xs):\n        i += 1\n        print(xs[i])\n", {2})
    assert bumped and "i += 1" in bumped[0]
    lte = _off("def t(xs):\n    i = 0\n    while i <= len(xs):\n        print(xs[i])\n        i += 1\n", {3})
    assert lte and "len(xs)" in lte[0]


def test_correct_loops_are_not_flagged():
    assert _off("def t(xs):\n    for i in range(len(xs) - 1):\n        print(xs[i + 1] - xs[i])\n", {2}) == []
    assert _off("def t(xs):\n    i = 0\n    while i < len(xs):\n        print(xs[i])\n        i += 1\n", {3}) == []
    assert _off("def t(xs):\n    for i in range(len(xs)):\n        print(xs[i])\n", {2}) == []


def test_a_bare_except_returning_a_default_is_swallowed_but_a_logged_one_is_not():
    quiet = "def f(c):\n    try:\n        return c.run()\n    except:\n        return []\n"
    assert any(c.rule == "rule:swallowed-exception" for c in analyse_python(quiet, {4: "x"}).comments)
    logged = "def f(c):\n    try:\n        return c.run()\n    except Exception:\n        log.exception('x')\n" \
             "        return []\n"
    assert not any(c.rule == "rule:swallowed-exception" for c in analyse_python(logged, {4: "x"}).comments)
