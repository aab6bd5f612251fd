"""`keel jobs`: background jobs of every replica (from SQL), and cancelling one."""

from __future__ import annotations

import time

from core.cli._common import _print


def add_jobs_commands(sub, add) -> None:
    p = add("jobs", cmd_jobs_list, "background jobs on every replica: kind, owner, status, progress, ETA")
    p.add_argument("--status", action="append", help="only jobs in this status (repeatable)")
    p.add_argument("--kind", help="only jobs of this kind (search_sync, eval_run, review, support_summary)")
    p.add_argument("-n", type=int, default=30, help="how many, newest first")
    actions = p.add_subparsers(dest="jobs_command")
    c = add("cancel", cmd_jobs_cancel, "cancel a queued or running job (from any replica)", actions)
    c.add_argument("id")


def _age(ts: float | None) -> str:
    if not ts:
        return "-"
    seconds = max(0.0, time.time() - ts)
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}m" if seconds < 7200 else f"{seconds / 3600:.0f}h"


def cmd_jobs_list(args) -> int:
    from core import jobs, services

    services.prepare()
    jobs.housekeeping()  # a dead worker's job shows as failed or queued again, not running
    rows = jobs.list_jobs(kind=args.kind, status=args.status, limit=args.n)
    if args.json:
        _print(args, [j.as_dict() for j in rows])
        return 0
    if not rows:
        print("no jobs")
        return 0
    print(f"{'id':32}  {'kind':16} {'status':10} {'progress':>8} {'eta':>6} {'age':>5}  owner / label / error")
    for j in rows:
        eta = f"{j.eta_s:.0f}s" if j.eta_s is not None and not j.status.finished else "-"
        note = j.error if j.error and j.status != "running" else j.progress.get("message", "")
        print(f"{j.id:32}  {j.kind[:16]:16} {j.status:10} {j.fraction:>7.0%} {eta:>6} {_age(j.created_at):>5}  "
              f"{j.owner} · {j.label}" + (f" · {note}" if note else ""))
    return 0


def cmd_jobs_cancel(args) -> int:
    from core import jobs, services

    services.prepare()
    status = jobs.cancel(args.id, by="cli")
    text = "cancelled" if status == "cancelled" else "cancel requested; it stops at its next progress report"
    _print(args, {"id": args.id, "status": str(status)}, f"{args.id}: {text}")
    return 0
