"""The `keel` command line: the same core calls the UI and the API make, with `--json` for scripts.

One module per command group; this one only builds the parser and dispatches.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from core.cli._app import cmd_db_upgrade, cmd_llm_chat, cmd_logs_tail, cmd_serve, cmd_users  # noqa: E402
from core.cli._completion import add_completion_commands  # noqa: E402
from core.cli._demo import cmd_demo_clear, cmd_demo_seed, cmd_demo_traffic  # noqa: E402
from core.cli._eval import add_eval_commands  # noqa: E402
from core.cli._jobs import add_jobs_commands  # noqa: E402
from core.cli._prompts import cmd_prompts_lint  # noqa: E402
from core.cli._review import add_review_command  # noqa: E402
from core.cli._search import add_search_commands  # noqa: E402
from core.cli._support import (  # noqa: E402
    cmd_support_build,
    cmd_support_chat,
    cmd_support_classify,
    cmd_support_eval_report,
)
from core.cli._workspace import cmd_workspace_run, cmd_workspace_tasks  # noqa: E402

__all__ = ["build_parser", "main"]


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
    p = add("clear", cmd_demo_clear, "delete exactly the demo data (demo traffic, its review items, seeded support "
            "history, unused synthetic customers)", demo)
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
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

    add_eval_commands(sub, add)
    add_search_commands(sub, add)
    add_completion_commands(sub, add)
    add_review_command(sub, add)
    add_jobs_commands(sub, add)

    support = sub.add_parser("support", help="support bot").add_subparsers(dest="support_command", required=True)
    p = add("classify", cmd_support_classify, "classify a message (or each line of --file) into a support intent",
            support)
    p.add_argument("text", nargs="?", help="the message, or - to read stdin")
    p.add_argument("--file", help="UTF-8 file with one message per line; prints one result per line, in order")
    add("build", cmd_support_build, "tune the intent encoder and fit the classifier head now (cached by data hash; "
        "`make run` and `make test` call it so the first message does not wait a minute)", support)
    p = add("eval-report", cmd_support_eval_report, "intent classifier: per-label precision/recall, confusion and "
            "calibration on the dev and test splits and the external set", support)
    p.add_argument("--mistakes", action="store_true", help="also list the in-house misses (never external ones)")
    p = add("chat", cmd_support_chat, "chat with the support bot in the terminal, as a demo customer", support)
    p.add_argument("--email", default="jordan.lee@example.com", help="the demo customer to chat as")
    p.add_argument("--new", action="store_true", help="start a new conversation instead of resuming")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from core.config import ConfigError

    try:
        return args.fn(args) or 0
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
