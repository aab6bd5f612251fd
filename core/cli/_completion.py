"""Code completion from the command line: one suggestion for a file position, and the trace benchmark."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from pathlib import Path

from core.cli._common import _read_text_file

SIBLING_LIMIT = 16
SIBLING_MAX_BYTES = 100_000


def _siblings(file: Path) -> dict[str, str]:
    """Other small text files next to FILE: the context an editor would have open."""
    files: dict[str, str] = {}
    for other in sorted(file.parent.iterdir()):
        if len(files) >= SIBLING_LIMIT:
            break
        if other == file or not other.is_file() or other.stat().st_size > SIBLING_MAX_BYTES:
            continue
        try:
            files[other.name] = other.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
    return files


def cmd_complete(args) -> int:
    from core import services
    from core.completion import CompletionInputError, CompletionOptions, EditorState, get_completion_service, offset_of
    from core.llm import get_gateway

    file = Path(args.file)
    text = _read_text_file(args.file, "file")
    try:
        cursor = offset_of(text, args.line, args.col)
    except CompletionInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    services.prepare()
    user = f"cli:{os.environ.get('USER') or getpass.getuser() or 'local'}"
    session = get_completion_service().session(user, "cli")
    siblings = _siblings(file)
    state = EditorState(path=file.name, text=text, cursor=cursor, files=siblings, open_paths=tuple(siblings),
                        language=args.language)
    options = CompletionOptions(debounce_ms=0, max_tokens=args.max_tokens)
    try:
        done = session.complete(state, options)
    except CompletionInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        get_gateway().flush()
        get_completion_service().telemetry.flush()
    payload = {"completion": done["completion"], "latency_ms": done["latency_ms"], "cached": done["cached"],
               "status": done["status"], "model_ms": done["model_ms"], "tokens_out": done["tokens_out"],
               "template": done["template"], "request_id": done["request_id"], "reason": done["reason"],
               "error": done["error"]}
    if args.json:
        print(json.dumps(payload))
    else:
        print(done["completion"] if done["completion"] else f"(no suggestion: {done['reason'] or done['status']})")
        print(f"-- {done['status']}, {done['tokens_out']} tokens, {payload['latency_ms'] or 0:.0f} ms to first "
              f"character", file=sys.stderr)
    return 0 if done["status"] in ("shown", "empty") else 1


def cmd_bench_completion(args) -> int:
    """Runs bench/completion.py (the same report `make bench` shows) on the given trace."""
    from core.config import REPO_ROOT

    command = [sys.executable, str(REPO_ROOT / "bench" / "completion.py"), "--trace", args.trace]
    if args.json:
        command.append("--json")
    if args.baseline_keystrokes is not None:
        command += ["--baseline-keystrokes", str(args.baseline_keystrokes)]
    if args.inprocess:
        command.append("--inprocess")
    return subprocess.call(command, cwd=REPO_ROOT)


def add_completion_commands(sub, add) -> None:
    p = add("complete", cmd_complete, "suggest a completion at a file position (fill-in-the-middle)")
    p.add_argument("file", help="UTF-8 source file; other small files in its folder are used as context")
    p.add_argument("--line", type=int, required=True, help="1-based line of the cursor")
    p.add_argument("--col", type=int, required=True, help="1-based column of the cursor")
    p.add_argument("--language", help="override the language detected from the extension")
    p.add_argument("--max-tokens", type=int, default=48)
    bench = sub.add_parser("bench", help="benchmarks").add_subparsers(dest="bench_command", required=True)
    p = add("completion", cmd_bench_completion, "replay a typing trace through /api/complete", bench)
    p.add_argument("--trace", required=True, help="JSON lines: {t_ms, path, text, cursor} or {t_ms, accept}")
    p.add_argument("--baseline-keystrokes", type=int, help="replay only this many events for the naive baseline")
    p.add_argument("--inprocess", action="store_true",
                   help="also replay with the model in-process (as before the worker) and report worker/in-process")
