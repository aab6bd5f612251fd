"""Unified-diff parsing: the sample PRs, new-side line numbers, and every kind of bad input."""

from __future__ import annotations

import pytest

from core.review import DiffError, diff_hash, parse_diff, sample_prs

GOOD = """diff --git a/app.py b/app.py
index 1111111..2222222 100644
--- a/app.py
+++ b/app.py
@@ -1,4 +1,5 @@
 import os
-x = 1
+x = 2
+y = 3
 def f():
     return x
"""


def test_every_sample_pr_parses_with_added_lines():
    for pr in sample_prs():
        diff = parse_diff(pr.diff)
        assert diff.files, pr.id
        for expected in pr.expected:
            assert expected.line in diff.file(expected.path).added, (pr.id, expected)


def test_new_side_line_numbers_and_counts():
    diff = parse_diff(GOOD)
    f = diff.files[0]
    assert (f.path, f.old_path, f.status) == ("app.py", "app.py", "modified")
    assert f.added == {2: "x = 2", 3: "y = 3"}
    assert f.removed_count == 1
    assert (diff.added_lines, diff.removed_lines) == (2, 1)


def test_plain_diff_u_without_git_header_and_new_file():
    text = "--- /dev/null\n+++ b/new.py\n@@ -0,0 +1,2 @@\n+a = 1\n+b = 2\n"
    f = parse_diff(text).files[0]
    assert (f.path, f.status, f.added) == ("new.py", "added", {1: "a = 1", 2: "b = 2"})


def test_reindented_lines_are_not_reviewable_but_new_ones_are():
    text = ("--- a/m.py\n+++ b/m.py\n@@ -1,2 +1,5 @@\n def f():\n-    g()\n+    try:\n+        g()\n"
            "+    except Exception:\n+        pass\n")
    f = parse_diff(text).files[0]
    assert set(f.added) == {2, 3, 4, 5}
    assert set(f.reviewable) == {2, 4, 5}  # `g()` only moved in: not the PR's new code


def test_crlf_and_lf_copies_share_a_hash():
    assert diff_hash(GOOD) == diff_hash(GOOD.replace("\n", "\r\n"))
    assert diff_hash(GOOD) != diff_hash(GOOD.replace("y = 3", "y = 4"))


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("   \n\n", "empty"),
    ("hello, please review my code\n", "no file changes"),
    ("--- a/x.py\n+++ b/x.py\n@@ -1,3 +1,3 @@\n a\n-b\n+c\n", "ends inside a hunk"),
    ("--- a/x.py\n+++ b/x.py\n@@ -1,1 +1,1 @@\n-a\n+b\n+c\n", "more lines than the hunk header"),
    ("--- a/x.py\n+++ b/x.py\n@@ garbage @@\n", "malformed hunk header"),
    ("@@ -1 +1 @@\n-a\n+b\n", "before any file header"),
    ("--- a/x.py\n+++ b/x.py\n@@ -1,2 +1,2 @@\n a\n?b\n", "ended early"),
])
def test_malformed_diffs_say_what_is_wrong(text, message):
    with pytest.raises(DiffError, match=message):
        parse_diff(text)


def test_binary_input_is_refused_and_binary_files_are_marked():
    with pytest.raises(DiffError, match="NUL bytes"):
        parse_diff(b"PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(DiffError, match="not UTF-8"):
        parse_diff(b"--- a/x\n+++ b/x\n\xff\xfe\n")
    text = ("diff --git a/logo.png b/logo.png\nindex 1..2 100644\nGIT binary patch\nliteral 10\nHcmV?d00001\n\n"
            "literal 0\nHcmV?d00001\n\n" + GOOD)
    diff = parse_diff(text)
    assert [(f.path, f.binary) for f in diff.files] == [("logo.png", True), ("app.py", False)]
    assert parse_diff("diff --git a/a.bin b/a.bin\nBinary files a/a.bin and b/a.bin differ\n").files[0].binary


def test_oversized_diff_is_refused():
    with pytest.raises(DiffError, match="limit"):
        parse_diff(b"x" * 4_000_001)
