"""The `keel` command line: the same core calls the UI and the API make, with `--json` for scripts."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _print(args, payload, text: str | None = None) -> None:
    if args.json:
        print(json.dumps(payload, default=str))
    else:
        print(text if text is not None else json.dumps(payload, indent=2, default=str))


def cmd_serve(args) -> int:
    from core.config import REPO_ROOT, get_settings

    settings = get_settings()
    port = args.port or settings.port
    host = args.host or settings.host
    os.environ["KEEL_PORT"] = str(port)  # so redirect URIs and the public URL follow the chosen port
    os.environ.setdefault("KEEL_PUBLIC_URL", f"http://localhost:{port}")
    print(f"Keel is starting at http://localhost:{port}  (API: /api/health, gateway: /v1, playground: /playground)",
          flush=True)
    command = [sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "app.py"),
               "--server.port", str(port), "--server.address", host, "--server.headless", "true",
               "--browser.gatherUsageStats", "false"]
    os.chdir(REPO_ROOT)
    os.execv(sys.executable, command)


def _echo_stream(chunks, *, quiet: bool) -> None:
    """Print streamed text as it arrives (unless --json); a fallback restart is announced on stderr."""
    for chunk in chunks:
        if chunk.reset:
            print("\n[fallback: restarting answer]", file=sys.stderr)
        elif not quiet:
            print(chunk.text, end="", flush=True)


def cmd_llm_chat(args) -> int:
    from core import services
    from core.llm import LLMError, LLMRequest, get_gateway

    services.prepare()
    if args.text == "-":
        try:
            text = sys.stdin.buffer.read(2_000_000).decode("utf-8")
        except UnicodeDecodeError as exc:
            print(f"error: standard input is not UTF-8 text (bad byte at offset {exc.start})", file=sys.stderr)
            return 2
    else:
        text = args.text
    request = LLMRequest(messages=[{"role": "user", "content": text}], tier=args.tier, feature="cli",
                         task="llm_chat", max_tokens=args.max_tokens, user=os.environ.get("USER"))
    gateway = get_gateway()
    try:
        stream = gateway.stream(request)
        _echo_stream(stream, quiet=args.json)
        result = stream.result
    except LLMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        gateway.log.flush()
    if args.json:
        print(json.dumps({"text": result.text, "request_id": result.request_id, "provider": result.provider,
                          "model": result.model, "status": result.status, "tokens_in": result.tokens_in,
                          "tokens_out": result.tokens_out, "ttft_ms": result.ttft_ms,
                          "latency_ms": result.latency_ms}))
    else:
        print()
    return 0


def cmd_logs_tail(args) -> int:
    from core import services
    from core.ops import tail

    services.prepare()
    last_id = 0
    deadline = time.monotonic() + args.follow_seconds if args.follow else None
    while True:
        rows = tail(args.n, after_id=last_id)
        for row in rows:
            last_id = max(last_id, row["id"])
            if not args.full:
                row.pop("input_text", None)
                row.pop("output_text", None)
            if args.json:
                print(json.dumps(row, default=str))
            else:
                stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["created_at"]))
                print(f"{stamp} {row['status']:<9} {row['feature']}/{row['task']} {row['provider']}/{row['model']} "
                      f"{row['tokens_in']}→{row['tokens_out']} tok {row['latency_ms']:.0f} ms "
                      f"${row['cost_usd']:.6f} {row['error'] or ''}".rstrip())
        if deadline is None or time.monotonic() > deadline:
            return 0
        time.sleep(1.0)


def cmd_db_upgrade(args) -> int:
    from core import db
    from core.config import get_settings

    revision = db.upgrade()
    url = get_settings().database_url
    _print(args, {"revision": revision, "database": url.split("@")[-1]}, f"database at revision {revision}")
    return 0


def cmd_demo_seed(args) -> int:
    from core import services
    from core.demo import seed

    services.prepare()
    report = seed(traffic_rows=args.traffic)
    _print(args, report, "\n".join(f"{k}: {v}" for k, v in report.items()))
    return 0


def cmd_demo_traffic(args) -> int:
    import time

    from core import services
    from core.ops._synthetic import CAPABLE_AFTER, CAPABLE_BEFORE, ensure_customer_workspaces, insert_synthetic

    services.prepare()
    end = time.time()
    workspaces = 0 if args.no_workspaces else ensure_customer_workspaces(args.customers)
    n = insert_synthetic(args.rows, days=args.days, end=end, customers=args.customers)
    switch = end - args.days * 86400 / 2
    payload = {"rows": n, "days": args.days, "customers": args.customers, "workspaces_created": workspaces,
               "model_change": {"tier": "capable", "from": CAPABLE_BEFORE[1], "to": CAPABLE_AFTER[1],
                                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(switch))}}
    _print(args, payload, f"wrote {n:,} synthetic request-log rows over {args.days:g} days for {args.customers} "
                          f"customers ({workspaces} workspace rows created); the capable tier switches from "
                          f"{CAPABLE_BEFORE[1]} to {CAPABLE_AFTER[1]} at {payload['model_change']['at']}")
    return 0


def cmd_users(args) -> int:
    from core.auth import principal_from_claims
    from core.idp import DEV_USERS

    users = []
    for u in DEV_USERS:
        principal = principal_from_claims({"sub": u.sub, **u.claims})
        users.append({"sub": u.sub, "name": u.name, "title": u.title, "groups": sorted(principal.groups),
                      "clearance": u.clearance, "roles": sorted(principal.roles)})
    if args.json:
        print(json.dumps(users))
    else:
        for u in users:
            print(f"{u['sub']:<26} {u['name']:<12} clearance {u['clearance']}  groups {','.join(u['groups'])}  "
                  f"roles {','.join(u['roles'])}")
    return 0


def _read_text_file(path: str, what: str) -> str:
    """A UTF-8 text file, or a ValueError that says what is wrong with it (main prints it, exit 2)."""
    from pathlib import Path

    file = Path(path)
    if not file.is_file():
        raise ValueError(f"{what} {path!r} does not exist or is not a file")
    if file.stat().st_size > 4_000_000:
        raise ValueError(f"{what} {path!r} is larger than 4 MB")
    data = file.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{what} {path!r} is not UTF-8 text (bad byte at offset {exc.start})") from None


def cmd_workspace_run(args) -> int:
    import getpass

    from core import services
    from core.llm import LLMError, get_gateway
    from core.workspace import CreditsExhausted, NotAMember, ensure_member, get_task, run_task

    get_task(args.task)  # an unknown task fails before anything else happens
    selection = _read_text_file(args.text_file, "text file")
    page = _read_text_file(args.page_file, "page file") if args.page_file else None
    params = {name: getattr(args, name) for name in ("language", "tone", "instruction", "question")
              if getattr(args, name) is not None}
    if args.task == "ask_about_page" and page is None:
        page, selection = selection, ""  # the text file is the page to ask about
    services.prepare()
    # The CLI is run by whoever operates this installation: it acts as a member of the workspace it names,
    # creating that workspace (free plan) if it does not exist yet.
    user = f"cli:{os.environ.get('USER') or getpass.getuser() or 'local'}"
    name = "Demo workspace" if args.workspace == "demo" else None
    ensure_member(args.workspace, user, name=name)
    gateway = get_gateway()
    try:
        run = run_task(user, args.workspace, args.task, selection, page, params, max_tokens=args.max_tokens)
        if run.notice:
            print(f"note: {run.notice}", file=sys.stderr)
        _echo_stream(run, quiet=args.json)
        result = run.result
    except CreditsExhausted as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except NotAMember as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except LLMError as exc:
        print(f"error: {exc} (the credit was given back)", file=sys.stderr)
        return 1
    finally:
        gateway.log.flush()
    payload = {
        "task": result.task, "workspace": args.workspace, "text": result.text, "request_id": result.request_id,
        "tokens_in": result.tokens_in, "tokens_out": result.tokens_out, "ttft_ms": result.ttft_ms,
        "latency_ms": result.latency_ms, "credits_left": result.credits_left, "truncated": result.notice,
        "prompt_version": result.prompt_version, "status": result.status, "cut_off": result.cut_off,
    }
    if result.items is not None:
        payload["items"] = result.items
    if args.json:
        print(json.dumps(payload))
        return 0
    print()
    if result.items is not None:
        for item in result.items or [{"task": "(no action items found)", "assignee": None, "due": None}]:
            extra = ", ".join(x for x in (item["assignee"], item["due"] and f"due {item['due']}") if x)
            print(f"- [ ] {item['task']}" + (f" ({extra})" if extra else ""))
    left = "unlimited (paid plan)" if result.credits_left is None else str(result.credits_left)
    print(f"[{result.tokens_out} tokens, {result.latency_ms:.0f} ms, credits left this month: {left}]",
          file=sys.stderr)
    return 0


def cmd_workspace_tasks(args) -> int:
    from core.workspace import list_tasks

    rows = [{"id": t.id, "label": t.label, "description": t.description, "output": t.output,
             "input_budget": t.input_budget, "over_budget": t.over_budget, "uses_page": t.uses_page,
             "params": {p.name: list(p.choices) if p.choices else "text" for p in t.params}} for t in list_tasks()]
    if args.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            extra = "".join(f" --{name} {'|'.join(v) if isinstance(v, list) else 'TEXT'}"
                            for name, v in r["params"].items())
            print(f"{r['id']:<18} {r['description']}{extra}")
    return 0


def cmd_prompts_lint(args) -> int:
    from pathlib import Path

    from core.prompts import PROMPTS_DIR, lint_paths, update_lock
    from core.prompts._lint import LOCK_NAME, collect, lock_root_for

    paths = [Path(p) for p in args.paths] or [PROMPTS_DIR]
    if args.update_lock:
        files = collect(paths)  # a missing path fails here, before anything is written
        roots = {lock_root_for(f) for f in files} - {None}
        roots |= {p.resolve() for p in paths if p.is_dir() and lock_root_for(p / LOCK_NAME) is None}
        for root in sorted(roots):
            print(f"wrote {update_lock(root)}", file=sys.stderr)
    findings = lint_paths(paths)
    if args.json:
        print(json.dumps([f.as_dict() for f in findings]))
    else:
        for f in findings:
            print(f)
        errors = sum(f.severity == "error" for f in findings)
        print(f"prompt lint: {errors} error(s), {len(findings) - errors} warning(s)", file=sys.stderr)
    return 1 if any(f.severity == "error" for f in findings) else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keel", description="Keel: LLM features in production.")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name, fn, help_text, parent=sub):
        p = parent.add_parser(name, help=help_text)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(fn=fn)
        return p

    p = add("serve", cmd_serve, "run the web app (UI, /api, /v1, /playground)")
    p.add_argument("--port", type=int)
    p.add_argument("--host")

    llm = sub.add_parser("llm", help="talk to the gateway").add_subparsers(dest="llm_command", required=True)
    p = add("chat", cmd_llm_chat, "stream one answer to stdout", llm)
    p.add_argument("text", help="the message, or - to read stdin")
    p.add_argument("--tier", default="capable")
    p.add_argument("--max-tokens", type=int, default=256)

    logs = sub.add_parser("logs", help="the request log").add_subparsers(dest="logs_command", required=True)
    p = add("tail", cmd_logs_tail, "print the newest request-log rows", logs)
    p.add_argument("-n", type=int, default=20)
    p.add_argument("--follow", action="store_true")
    p.add_argument("--follow-seconds", type=float, default=3600)
    p.add_argument("--full", action="store_true", help="include input and output text")

    dbp = sub.add_parser("db", help="database").add_subparsers(dest="db_command", required=True)
    add("upgrade", cmd_db_upgrade, "apply schema migrations", dbp)

    demo = sub.add_parser("demo", help="demo data").add_subparsers(dest="demo_command", required=True)
    p = add("seed", cmd_demo_seed, "create the demo workspace, API key and sample traffic", demo)
    p.add_argument("--traffic", type=int, default=2000, help="synthetic request-log rows to add (0 for none)")
    p = add("traffic", cmd_demo_traffic, "generate synthetic request-log traffic", demo)
    p.add_argument("--rows", type=int, default=20000)
    p.add_argument("--days", type=float, default=30)
    p.add_argument("--customers", type=int, default=200, help="synthetic customers cust-NNN (power-law spread)")
    p.add_argument("--no-workspaces", action="store_true",
                   help="do not create workspace rows (plans) for the synthetic customers; they count as free")

    add("users", cmd_users, "list the dev identity provider's demo users")

    ws = sub.add_parser("workspace", help="workspace AI tasks").add_subparsers(dest="workspace_command",
                                                                                required=True)
    p = add("run", cmd_workspace_run, "run an AI task on a text file and stream the result", ws)
    p.add_argument("task", help="task id, e.g. fix_grammar, find_action_items (see `keel workspace tasks`)")
    p.add_argument("--text-file", required=True, help="UTF-8 file holding the selection")
    p.add_argument("--page-file", help="UTF-8 file holding the whole page (summarize, continue_writing, "
                                       "ask_about_page)")
    p.add_argument("--workspace", default="demo", help="workspace id (default: demo, created if missing)")
    p.add_argument("--language", help="translate: target language")
    p.add_argument("--tone", help="change_tone: the tone")
    p.add_argument("--instruction", help="ask_ai: what to do with the text")
    p.add_argument("--question", help="ask_about_page: the question")
    p.add_argument("--max-tokens", type=int, help="cap the answer below the task's own max_tokens")
    add("tasks", cmd_workspace_tasks, "list the AI tasks and their parameters", ws)

    prompts = sub.add_parser("prompts", help="prompt files").add_subparsers(dest="prompts_command", required=True)
    p = add("lint", cmd_prompts_lint, "check prompt files (PII, placeholders, versions, budget, ...)", prompts)
    p.add_argument("paths", nargs="*", metavar="PATH", help="prompt files or folders (default: prompts/)")
    p.add_argument("--update-lock", action="store_true",
                   help="record the current prompt versions in versions.lock after reviewing a change")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from core.config import ConfigError

    try:
        return args.fn(args) or 0
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
