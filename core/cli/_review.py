"""`keel review [DIFF_FILE] --repo PATH [--base REF --head REF]`: review a diff, or a git branch, against a local
repository checked out at the PR's base or head."""

from __future__ import annotations

import json
import sys

from core.cli._common import _read_text_file


def add_review_command(sub, add) -> None:
    p = add("review", cmd_review, "review a unified diff, or a git branch, against a local repository (PR review "
                                  "agent)", sub)
    p.add_argument("diff_file", metavar="DIFF_FILE", nargs="?",
                   help="a unified diff (git diff / diff -u), or - for stdin; omit it to review git refs "
                        "(--base/--head, default origin/main...HEAD)")
    p.add_argument("--repo", required=True,
                   help="your repository, checked out at the PR's base or its head (either is detected)")
    p.add_argument("--base", help="git: the branch the PR goes into (default origin/main, else main or master)")
    p.add_argument("--head", help="git: the PR's commit or branch (default HEAD)")
    p.add_argument("--range", dest="commit_range", metavar="BASE...HEAD",
                   help="git: a commit range such as origin/main...HEAD (instead of --base/--head)")
    p.add_argument("--no-llm", action="store_true", help="tools only: no model explanation")
    p.add_argument("--no-cache", action="store_true", help="review again even if this diff was reviewed before")
    p.add_argument("--export", choices=("github", "sarif"), help="print a GitHub review or SARIF 2.1.0 instead")
    # the values of core.review.Severity, spelled out: importing core.review would slow every `keel` command
    p.add_argument("--fail-on", choices=("blocker", "major", "minor", "nit"),
                   help="exit 1 when a comment has this severity or worse (for CI)")


def cmd_review(args) -> int:
    import getpass
    import os

    from core import services
    from core.review import ReviewOptions, at_least, github_review, review_diff, review_refs, sarif
    from core.review._checkout import split_range

    refs = bool(args.base or args.head or args.commit_range)
    if args.diff_file and refs:
        raise ValueError("give either DIFF_FILE or git refs (--base/--head/--range), not both")
    base, head = args.base, args.head
    if args.commit_range:
        if base or head:
            raise ValueError("give either --range or --base/--head, not both")
        base, head = split_range(args.commit_range)
    data = b""
    if not args.diff_file:
        pass  # git refs: the diff comes from the repository
    elif args.diff_file == "-":
        data = sys.stdin.buffer.read(4_000_001)
        if len(data) > 4_000_000:
            raise ValueError("the diff on stdin is larger than 4 MB")
    else:
        _read_text_file(args.diff_file, "diff file")  # existence, size and UTF-8, with a clear message
        with open(args.diff_file, "rb") as handle:
            data = handle.read()
    services.prepare()
    user = f"cli:{os.environ.get('USER') or getpass.getuser() or 'local'}"
    # The repository is named by the person running the command: their own, allowed without KEEL_REVIEW_ROOTS.
    options = ReviewOptions(use_llm=not args.no_llm, use_cache=not args.no_cache, user=user, own_repo=True)

    def progress(fraction: float, message: str) -> None:
        if not args.json and not args.export and sys.stderr.isatty():
            print(f"\r[{fraction:4.0%}] {message[:70]:<70}", end="", file=sys.stderr, flush=True)

    try:
        if args.diff_file:
            result = review_diff(data, args.repo, options, progress=progress)
        else:
            result = review_refs(args.repo, base, head or "HEAD", options, progress=progress)
    finally:
        from core.llm import flush_gateway

        flush_gateway()  # only if a model call built the gateway
    if not args.json and not args.export and sys.stderr.isatty():
        print("\r" + " " * 80 + "\r", end="", file=sys.stderr)
    if args.export == "github":
        print(json.dumps(github_review(result), indent=2))
    elif args.export == "sarif":
        print(json.dumps(sarif(result), indent=2))
    elif args.json:
        print(json.dumps(result.as_dict(), default=str))
    else:
        _print_text(result)
    if args.fail_on and any(at_least(c.severity, args.fail_on) for c in result.comments):
        return 1
    return 0


def _print_text(result) -> None:
    print(result.summary)
    for c in result.comments:
        also = f" (also lines {', '.join(map(str, c.also_at))})" if c.also_at else ""
        print(f"\n{c.path}:{c.line}{also}  {c.severity} · {c.category} · {c.source} · {c.confidence:.2f}")
        print(f"  {c.message}")
        if c.explanation:
            print(f"  model: {c.explanation}")
        if c.suggestion:
            print(f"  fix: {c.suggestion}")
    if result.model_summary:
        print(f"\nmodel's summary: {result.model_summary}")
    for notice in result.notices:
        print(f"note: {notice}", file=sys.stderr)
    tools = sum(1 for e in result.timeline if not str(e["tool"]).startswith("model"))
    print(f"\n[{result.verdict} · {len(result.comments)} comment(s) · {tools} tool call(s) in {result.iterations} "
          f"round(s) · {result.tokens_in}+{result.tokens_out} tokens · ${result.cost_usd:.6f} · "
          f"{result.wall_ms / 1000:.1f} s{' · cached' if result.cached else ''}]", file=sys.stderr)
