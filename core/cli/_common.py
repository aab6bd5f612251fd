"""Output helpers shared by the command groups."""

from __future__ import annotations

import json
import sys


def _print(args, payload, text: str | None = None) -> None:
    if args.json:
        print(json.dumps(payload, default=str))
    else:
        print(text if text is not None else json.dumps(payload, indent=2, default=str))


def _echo_stream(chunks, *, quiet: bool) -> None:
    """Print streamed text as it arrives (unless --json); a fallback restart is announced on stderr."""
    for chunk in chunks:
        if chunk.reset:
            print("\n[fallback: restarting answer]", file=sys.stderr)
        elif not quiet:
            print(chunk.text, end="", flush=True)


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
