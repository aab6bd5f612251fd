"""Prompt file lint."""

from __future__ import annotations

import json
import sys


def cmd_prompts_lint(args) -> int:
    from pathlib import Path

    from core.prompts import PROMPTS_DIR, lint_paths, update_lock
    from core.prompts._lint import LOCK_NAME, collect, lock_root_for

    paths = [Path(p) for p in args.paths] or [PROMPTS_DIR]
    if args.update_lock:
        files = collect(paths)  # a missing path fails here, before anything is written
        roots = {root for f in files if (root := lock_root_for(f)) is not None}
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
