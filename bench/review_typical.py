"""PR review of a typical PR (about 250 changed lines over ~20 files) without the model, today's code against the
code before issue 15 (`--old REV`, default the commit before it), in the same run on the same machine.

The PR: every real-world suite case (data/review/real) and three demo sample PRs in one repository, plus a new
100-line module. Each arm runs in its own Python process (the old arm imports the old `core/` extracted with
`git archive`), reviews the same diff `--repeats` times tools-only with the cache off, and reports the median.
The new code is timed with the repository at the base and at the head (the CI way); the old code at the base
(at the head it rebuilt files from the diff alone). Goal: <= 5 s per review on 2 cores.

    python bench/review_typical.py [--json] [--repeats 3] [--old REV]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import _common
from _common import Report, median

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 5.0
OLD_REV = "358ffb0^"  # the commit before issue 15's review changes
WORKER = r"""
import json, sys, time
from core import services
services.prepare()
from core.review import ReviewOptions, review_diff
repo, diff, repeats = sys.argv[1], open(sys.argv[2]).read(), int(sys.argv[3])
times, result = [], None
for _ in range(repeats):
    started = time.perf_counter()
    result = review_diff(diff, repo, ReviewOptions(use_llm=False, use_cache=False))
    times.append(time.perf_counter() - started)
print(json.dumps({"times": times, "comments": len(result.comments), "notices": result.notices}))
"""


def git(cwd: Path, *args: str, data: bool = False):
    out = subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@keel.dev", *args], cwd=cwd,
                         capture_output=True, timeout=120, check=True)
    return out.stdout if data else out.stdout.decode()


def new_module() -> str:
    lines = ['"""Webhook handlers for the partner API (new in this PR)."""', "", "import json", "", ""]
    for i in range(20):
        lines += [f"def handle_event_{i}(payload):",
                  f'    """Event type {i}: validate and normalise the payload."""',
                  "    data = json.loads(payload)",
                  f'    return {{"type": {i}, "id": data.get("id"), "items": len(data.get("items", []))}}',
                  ""]
    return "\n".join(lines)


def build_pr(home: Path) -> tuple[Path, str, int]:
    """A git repository at the PR's base with a branch `pr`; returns (repo, the PR's diff, changed lines)."""
    from core.review import get_sample
    from core.review._diff import parse_diff
    from core.review._repo import _apply

    repo = home / "typical"
    shutil.copytree(ROOT / "data" / "review" / "repo", repo, ignore=shutil.ignore_patterns("__pycache__"))
    real = ROOT / "data" / "review" / "real"
    cases = sorted(p for p in real.iterdir() if (p / "base").is_dir())
    for case in cases:
        shutil.copytree(case / "base", repo, dirs_exist_ok=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "checkout", "-q", "-b", "pr")
    for case in cases:
        shutil.copytree(case / "head", repo, dirs_exist_ok=True)
    for sample in ("01_sql_injection", "02_off_by_one", "05_clean_refactor"):
        for f in parse_diff(get_sample(sample).diff).files:
            path = repo / f.path
            path.write_text("\n".join(_apply(path.read_text().splitlines(), f)) + "\n")
    (repo / "partner").mkdir()
    (repo / "partner" / "webhooks.py").write_text(new_module())
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "typical PR")
    diff = git(repo, "diff", "main", "pr")
    changed = sum(1 for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---")))
    return repo, diff, changed


def old_code(rev: str, into: Path) -> Path:
    data = git(ROOT, "archive", "--format=tar", rev, "core", "prompts", "data/review", data=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def run_arm(code: Path, home: Path, repo: Path, diff_file: Path, repeats: int) -> dict:
    """One arm in its own process and data directory (old and new code have different migrations)."""
    env = {**os.environ, "KEEL_HOME": str(home), "PYTHONPATH": str(code), "HF_HUB_OFFLINE": "1",
           "KEEL_REVIEW_ROOTS": str(repo.parent)}
    env.pop("KEEL_DATABASE_URL", None)
    out = subprocess.run([sys.executable, "-c", WORKER, str(repo), str(diff_file), str(repeats)], cwd=code,
                         env=env, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"arm {code} failed: {out.stderr[-800:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--old", default=OLD_REV, help="the git revision of the old code path")
    args = parser.parse_args()
    report = Report("review_typical", "PR review of a typical PR without the model: today vs before issue 15")
    work = Path(tempfile.mkdtemp(prefix="keel-bench-review-typical-", dir=_common.BENCH_VAR
                                 if _common.BENCH_VAR.exists() else None))
    try:
        home = work / "home"
        _common.fresh_core(HOME=str(home))
        repo, diff, changed = build_pr(home)
        diff_file = work / "pr.diff"
        diff_file.write_text(diff)
        report.metric("changed_lines", changed, "", "changed lines in the PR")
        report.metric("files", diff.count("\ndiff --git ") + 1, "", "files in the PR")
        old = old_code(args.old, work / "old")
        repeats = max(1, args.repeats)
        new_home, old_home = work / "home-new", work / "home-old"
        new_base = run_arm(ROOT, new_home, repo, diff_file, repeats)
        old_base = run_arm(old, old_home, repo, diff_file, repeats)
        git(repo, "checkout", "-q", "main")  # the working tree at the base now; the arms above read it at the head
        new_head, old_head = new_base, old_base
        new_base = run_arm(ROOT, new_home, repo, diff_file, repeats)
        old_base = run_arm(old, old_home, repo, diff_file, repeats)
        for key, arm in (("new_at_head", new_head), ("new_at_base", new_base), ("old_at_base", old_base),
                         ("old_at_head", old_head)):
            report.metric(f"{key}_s", median(arm["times"]), "s", f"{key.replace('_', ' ')}: median review")
            report.metric(f"{key}_comments", arm["comments"], "", f"{key.replace('_', ' ')}: comments")
        report.metric("ratio_new_head_vs_old_base", median(new_head["times"]) / median(old_base["times"]), "x",
                      "new (repo at head) / old (repo at base)")
        report.metric("ratio_new_base_vs_old_base", median(new_base["times"]) / median(old_base["times"]), "x",
                      "new / old, both with the repo at the base")
        report.check("typical_pr_at_head_s", median(new_head["times"]), "<=", TARGET_S, "s",
                     "typical PR, repo at head, no model")
        report.check("typical_pr_at_base_s", median(new_base["times"]), "<=", TARGET_S, "s",
                     "typical PR, repo at base, no model")
        report.check("no_rebuilt_files_at_head", sum("rebuilt from the diff" in n for n in new_head["notices"]),
                     "==", 0, "", "new code: nothing rebuilt from the diff at the head")
        report.note(f"old code = {args.old}; at the head it says: "
                    + "; ".join(n[:140] for n in old_head["notices"] if "rebuilt" in n))
    except Exception as exc:  # the report says what failed instead of a traceback
        import traceback

        traceback.print_exc()
        report.fail(f"{type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report.emit(args.json)


if __name__ == "__main__":
    raise SystemExit(main())
