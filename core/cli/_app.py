"""Commands that run or inspect the app: serve, llm chat, logs tail, db upgrade, users."""

from __future__ import annotations

import json
import os
import sys
import time

from core.cli._common import _echo_stream, _print


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
        gateway.flush()
    if result is None:  # _echo_stream read the stream to its end, and a finished stream always sets it
        raise RuntimeError(f"the completion stream {stream.request_id} ended without a result")
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
    from core.observe import tail

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


def cmd_users(args) -> int:
    from core.auth import principal_from_claims
    from core.idp import DEV_USERS

    users, lines = [], []
    for u in DEV_USERS:
        principal = principal_from_claims({"sub": u.sub, **u.claims})
        groups, roles = sorted(principal.groups), sorted(principal.roles)
        users.append({"sub": u.sub, "name": u.name, "title": u.title, "groups": groups, "clearance": u.clearance,
                      "roles": roles})
        lines.append(f"{u.sub:<26} {u.name:<12} clearance {u.clearance}  groups {','.join(groups)}  "
                     f"roles {','.join(roles)}")
    if args.json:
        print(json.dumps(users))
    else:
        for line in lines:
            print(line)
    return 0
