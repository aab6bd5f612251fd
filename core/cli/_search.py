"""Document search from the command line: ingest/sync folders, ask questions as stated groups and clearance, read
the audit log. The same core calls the pages and /api/search make; the CLI's user is `cli:<login>`."""

from __future__ import annotations

import json
import os
import sys


def _cli_user() -> str:
    import getpass

    return f"cli:{os.environ.get('USER') or getpass.getuser() or 'local'}"


def _progress_printer(enabled: bool):
    def show(p) -> None:
        if not enabled or p.phase == "scanning":
            return
        eta = f", ETA {p.eta_s:.0f}s" if p.eta_s is not None and p.phase == "indexing" else ""
        print(f"\r[{p.phase}] {p.done}/{p.total} files: {p.indexed} indexed, {p.unchanged} unchanged, "
              f"{p.refused} refused, {p.elapsed_s:.1f}s{eta}   ", end="", file=sys.stderr, flush=True)
        if p.phase == "done":
            print(file=sys.stderr)
    return show


def _print_report(args, report) -> int:
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        print(f"{report.root}: {report.summary()}")
        for item in report.refused:
            print(f"  refused {item['path']}: {item['reason']}")
        for item in report.skipped:
            print(f"  skipped {item['path']}: {item['reason']}")
    return 0 if report.ok else 1


def cmd_search_ingest(args) -> int:
    from core import services
    from core.search import IngestError, sync

    services.prepare()
    try:
        report = sync(args.dir, progress=_progress_printer(not args.quiet))
    except IngestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return _print_report(args, report)


def cmd_search_sync(args) -> int:
    """Re-sync every folder already in the index (and the demo corpus)."""
    from core import services
    from core.search import DEMO_CORPUS, IngestError, list_documents, sync

    services.prepare()
    roots = sorted({d.root for d in list_documents()} | {str(DEMO_CORPUS.resolve())})
    code, reports = 0, []
    for root in roots:
        try:
            report = sync(root, progress=_progress_printer(not args.quiet and not args.json))
        except IngestError as exc:
            print(f"error: {exc}", file=sys.stderr)
            code = 2
            continue
        reports.append(report)
        if not report.ok:
            code = max(code, 1)
        if not args.json:
            _print_report(args, report)
    if args.json:
        print(json.dumps([r.as_dict() for r in reports]))
    return code


def cmd_search_ask(args) -> int:
    from core import services
    from core.llm import get_gateway
    from core.search import SearchInputError, ask, principal_for

    question = sys.stdin.read() if args.question == "-" else args.question
    principal = principal_for(_cli_user(), args.groups or "", args.clearance)
    services.prepare()
    try:
        run = ask(principal, question, k=args.k, channel="cli", use_llm=not args.no_llm, max_tokens=args.max_tokens)
    except SearchInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if not args.json and run.sources:
            print("sources: " + "  ".join(f"[{s.n}] {s.title} ({s.doc_id})" for s in run.sources), file=sys.stderr)
        for piece in run:
            if not args.json:
                print(piece, end="", flush=True)
    finally:
        get_gateway().flush()
    answer = run.answer
    if answer is None:  # the loop above read the whole run, and a finished run always sets its answer
        raise RuntimeError("the search answer stream ended without an answer")
    if args.json:
        print(json.dumps(answer.as_dict()))
    else:
        print()
        if answer.fallback_reason:
            print(f"note: {answer.fallback_reason}", file=sys.stderr)
    return 0


def cmd_search_audit(args) -> int:
    from core import services
    from core.search import audit_csv, audit_log

    services.prepare()
    entries = audit_log(user=args.user, limit=args.n)
    if args.csv:
        print(audit_csv(entries), end="")
    elif args.json:
        print(json.dumps([e.__dict__ for e in entries]))
    else:
        import time

        for e in entries:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e.created_at))
            print(f"{when}  {e.user:<28} {e.channel:<5} {e.results} chunks  {e.query[:70]!r}  docs={e.doc_ids}")
    return 0


def add_search_commands(sub, add) -> None:
    search = sub.add_parser("search", help="document search").add_subparsers(dest="search_command", required=True)
    p = add("ingest", cmd_search_ingest, "index a folder of documents incrementally (hash check; exit 1 if any "
                                         "file was refused)", search)
    p.add_argument("dir", help="folder with .md/.txt/.html (YAML front matter) and .pdf (+ .pdf.meta.yaml)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p = add("sync", cmd_search_sync, "re-sync every indexed folder and the demo corpus", search)
    p.add_argument("--quiet", action="store_true")
    p = add("ask", cmd_search_ask, "ask a question as a user with the given groups and clearance", search)
    p.add_argument("question", help="the question, or - to read stdin")
    p.add_argument("--groups", default="", help="comma-separated groups (all-staff is always added)")
    p.add_argument("--clearance", type=int, default=0, help="0 public, 1 internal, 2 confidential, 3 restricted")
    p.add_argument("--k", type=int, default=5, help="chunks to retrieve (1-20)")
    p.add_argument("--no-llm", action="store_true", help="extractive answer from the sources, no model call")
    p.add_argument("--max-tokens", type=int, help="cap the answer length")
    p = add("audit", cmd_search_audit, "newest retrievals in the audit log", search)
    p.add_argument("-n", type=int, default=50)
    p.add_argument("--user")
    p.add_argument("--csv", action="store_true", help="CSV (as the Audit page exports)")
