"""Support from the command line: classify messages (one, or a file of them) and chat as a customer."""

from __future__ import annotations

import json
import sys
import time


def _check_line(raw: bytes | str) -> tuple[str | None, str | None]:
    """(text, None) for a usable message, (None, error) for a bad line."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, f"not UTF-8 text (bad byte at offset {exc.start})"
    text = raw.rstrip("\r")
    if any(ord(c) < 32 and c != "\t" for c in text):
        return None, "binary data (control characters), not a message"
    if not text.strip():
        return None, "empty line"
    return text, None


def _classify_lines(lines: list, numbered: bool) -> list[dict]:
    """One result object per line, in order; bad lines get an `error` instead of stopping the run."""
    from core.support import classify_many

    checked = [_check_line(raw) for raw in lines]
    good = [(i, text) for i, (text, _) in enumerate(checked) if text is not None]
    found = {}
    for start in range(0, len(good), 256):  # batches keep memory flat on big files
        batch = good[start:start + 256]
        for (i, _), c in zip(batch, classify_many([text for _, text in batch])):
            found[i] = c
    results = []
    for i, (_, error) in enumerate(checked):
        head = {"line": i + 1} if numbered else {}
        if error:
            results.append({**head, "error": error})
            continue
        c = found[i]
        results.append({**head, "label": c.label, "confidence": round(c.confidence, 4), "gap": round(c.gap, 4),
                        "uncertain": c.uncertain, **({"note": c.note} if c.note else {})})
    return results


def cmd_support_classify(args) -> int:
    from core.config import get_settings

    if (args.text is None) == (args.file is None):
        raise ValueError("give a message or --file FILE (one message per line), not both")
    if args.text is not None:
        text = sys.stdin.read() if args.text == "-" else args.text
        results = _classify_lines([text], numbered=False)
    else:
        from pathlib import Path

        path = Path(args.file)
        if not path.is_file():
            raise ValueError(f"file {args.file!r} does not exist or is not a file")
        if path.stat().st_size > 20_000_000:
            raise ValueError(f"file {args.file!r} is larger than 20 MB")
        lines = path.read_bytes().split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()  # the newline that ends the last line does not start another
        results = _classify_lines(lines, numbered=True)
    settings = get_settings()
    for result in results:
        if args.json:
            print(json.dumps(result, ensure_ascii=False))
        elif "error" in result:
            print(f"{result.get('line', '-'):>5}  error: {result['error']}")
        else:
            mark = " (unsure)" if result["uncertain"] else ""
            print(f"{result.get('line', '-'):>5}  {result['label']:<15} {result['confidence']:.2f}{mark}")
    if not args.json and not args.file:
        print(f"thresholds: confidence {settings.support_confidence}, ambiguity {settings.support_ambiguity}",
              file=sys.stderr)
    return 1 if args.text is not None and "error" in results[0] else 0


def cmd_support_build(args) -> int:
    """Build what the classifier needs before the first message: the tuned encoder and the head (both cached)."""
    from core.support import get_head
    from core.support._classifier import tuned_encoder

    started = time.monotonic()
    tuned_encoder(log=lambda m: print(m, file=sys.stderr, flush=True))
    head = get_head()
    print(f"intent classifier ready in {time.monotonic() - started:.0f} s: {head.train_examples} training examples, "
          f"temperature {head.temperature:.3f}, head {head.digest}")
    return 0


def cmd_support_eval_report(args) -> int:
    """Per-label precision/recall, confusion and calibration on dev, the in-house test split, the calibration set,
    the scored external sets (the thresholds are read off them) and each external set no choice was read from.

    No external set's messages are printed (only aggregates): they must stay out of anyone's tuning loop.
    """
    import numpy as np

    from core.support import classify_many, evaluate, get_head
    from core.support._classifier import HEAD_VERSION, choose_thresholds, flag_rates, threshold_rows
    from core.support._data import EXTERNAL_SETS, SCORED_EXTERNAL_SETS, load_external

    head = get_head()
    curve_rows = threshold_rows()
    fit_set = curve_rows[0].split if curve_rows else "dev"
    curve_sets = list(dict.fromkeys(r.split for r in curve_rows))
    curve_pred = classify_many([r.text for r in curve_rows])
    conf = np.array([p.confidence for p in curve_pred])
    gap = np.array([p.gap for p in curve_pred])
    right = np.array([p.label == r.label for r, p in zip(curve_rows, curve_pred)])
    chosen = choose_thresholds(conf, gap, right)
    reports = {"dev": evaluate("dev"), "test": evaluate("test")}
    for name in curve_sets:
        if name != "dev":
            reports[name] = evaluate(rows=[r for r in curve_rows if r.split == name], name=name)
    external = {name: rows for name, path in EXTERNAL_SETS.items() if (rows := load_external(path, split=name))}
    for name, rows in external.items():
        reports[name] = evaluate(rows=rows, name=name)
    if len(external) > 1:
        reports["external-all"] = evaluate(rows=[r for rows in external.values() for r in rows], name="external-all")
    h = {"version": HEAD_VERSION, "temperature": head.temperature, "train_examples": head.train_examples,
         "fitted_on": fit_set}
    wrong_flagged, right_flagged = flag_rates(conf, gap, right, *chosen)
    t = {"sets": curve_sets, "n": len(curve_rows), "wrong": int((~right).sum()), "confidence": chosen[0],
         "gap": chosen[1], "wrong_flagged": round(wrong_flagged, 4), "right_flagged": round(right_flagged, 4)}
    out = {
        "head": h,
        "chosen_thresholds": t,
        "scored_files": {name: str(path) for name, path in SCORED_EXTERNAL_SETS.items() if name in curve_sets},
        "external_files": {name: str(EXTERNAL_SETS[name]) for name in external},
        **{name: report.as_dict() for name, report in reports.items()},
    }
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=1))
        return 0
    print(f"head: {h['version']}, {h['train_examples']} training examples; temperature {h['temperature']:.3f} "
          f"fitted on the {fit_set} set")
    print(f"thresholds read off {t['n']} messages ({', '.join(curve_sets)}; {t['wrong']} wrong answers): "
          f"confidence < {t['confidence']}, gap < {t['gap']}, flagging {t['wrong_flagged']:.0%} of wrong answers "
          f"and {t['right_flagged']:.1%} of right ones there")
    for name, report in reports.items():
        role = " (thresholds read here)" if name in curve_sets else (" (never read for a choice)" if name in external
                                                                     else "")
        print(f"\n== {name}{role} ==")
        print(report.format(show_mistakes=bool(args.mistakes) and not name.startswith("external")))
    if not external:
        print(f"\n(no external set at {', '.join(str(p) for p in EXTERNAL_SETS.values())})")
    return 0


_HELP = "commands: /human  /yes  /no  /solved  /rate N [comment]  /wait [seconds]  /new  /quit"


def cmd_support_chat(args) -> int:
    from core import services
    from core.support import (
        Customer,
        SupportError,
        cancel_action,
        close_conversation,
        confirm_action,
        get_conversation,
        list_messages,
        new_conversation,
        open_conversation,
        rate,
        request_human,
        send_message,
    )

    services.prepare()
    from core.support import seed_demo_company

    seed_demo_company(history=False)  # the demo customers to chat as (idempotent)
    customer = Customer(sub=args.email, email=args.email.lower(), name=args.email)
    conv = new_conversation(customer) if args.new else open_conversation(customer)
    print(f"Halden Home support — conversation {conv.id} as {args.email} ({conv.status}). {_HELP}")
    seen = 0
    for m in list_messages(conv.id):
        seen = m.id
        print(f"{m.role}> {m.text}")

    def show_new() -> None:
        nonlocal seen
        for m in list_messages(conv.id, after_id=seen):
            seen = m.id
            if m.role != "customer":
                print(f"{m.role}> {m.text}")

    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            print("you> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line:
            break
        line = line.rstrip("\n")
        if not line.strip():
            continue
        try:
            if line in ("/quit", "/exit"):
                break
            elif line == "/human":
                request_human(conv.id, customer)
            elif line == "/yes":
                confirm_action(conv.id, customer)
            elif line == "/no":
                cancel_action(conv.id, customer)
            elif line == "/solved":
                close_conversation(conv.id, customer)
                print("system> marked solved; rate it with /rate 1-5")
            elif line.startswith("/rate"):
                parts = line.split(maxsplit=2)
                score = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
                rate(conv.id, customer, score, parts[2] if len(parts) > 2 else None)
                print("system> thank you for rating")
            elif line.startswith("/wait"):
                parts = line.split()
                deadline = time.monotonic() + (float(parts[1]) if len(parts) > 1 else 60)
                start = seen
                while time.monotonic() < deadline and seen == start:
                    time.sleep(1)
                    show_new()
            elif line == "/new":
                conv = new_conversation(customer)
                print(f"system> new conversation {conv.id}")
            elif line.startswith("/"):
                print(_HELP)
            else:
                send_message(conv.id, customer, line)
        except SupportError as exc:
            print(f"error: {exc}")
        show_new()
        status = get_conversation(conv.id).status
        if status in ("waiting", "claimed") and interactive:
            print(f"[with a person ({status}); type /wait to wait for their reply]")
    return 0
