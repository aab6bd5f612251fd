"""Workspace AI tasks from the command line."""

from __future__ import annotations

import json
import os
import sys

from core.cli._common import _echo_stream, _read_text_file


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
        gateway.flush()
    if result is None:  # _echo_stream read the stream to its end, and a finished stream always sets it
        raise RuntimeError(f"workspace task {args.task} ended without a result")
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

    tasks = list_tasks()
    if args.json:
        print(json.dumps([{"id": t.id, "label": t.label, "description": t.description, "output": t.output,
                           "input_budget": t.input_budget, "over_budget": t.over_budget, "uses_page": t.uses_page,
                           "params": {p.name: list(p.choices) if p.choices else "text" for p in t.params}}
                          for t in tasks]))
    else:
        for t in tasks:
            extra = "".join(f" --{p.name} {'|'.join(p.choices) if p.choices else 'TEXT'}" for p in t.params)
            print(f"{t.id:<18} {t.description}{extra}")
    return 0
