"""HTTP helpers the API routes share: one bounded body reader and one JSON body parser, so every route refuses
oversized and malformed bodies the same way (413 / 400 with a clear message) instead of each route's own copy
missing a case (an unbounded read, a RecursionError, a 5,000-digit number or a lone surrogate becoming a 500)."""

from __future__ import annotations

import json

from starlette.requests import Request

from core.errors import KeelError

MAX_JSON_DEPTH = 64
MAX_NUMBER_CHARS = 100


class BodyError(KeelError, ValueError):
    """A request body the route cannot accept; `status` is 413 (too large) or 400 (malformed)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def error_headers(exc: BodyError) -> dict[str, str]:
    """A 413 also closes the connection, so the server stops reading the rest of an oversized upload (left open,
    uvicorn keeps the connection alive by reading and discarding the whole body)."""
    return {"Connection": "close"} if exc.status == 413 else {}


async def read_body(request: Request, limit: int) -> bytes:
    """Read at most `limit` + 1 bytes, so an oversized body is refused without buffering all of it."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyError(f"request body is larger than {limit:,} bytes", 413)
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise BodyError(f"request body is larger than {limit:,} bytes", 413)
    return bytes(body)


def _number(text: str):
    if len(text) > MAX_NUMBER_CHARS:
        raise BodyError(f"request body has a number with {len(text):,} characters (at most {MAX_NUMBER_CHARS})")
    return int(text) if text.lstrip("-").isdigit() else float(text)


def _check_text(value: str, where: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BodyError(f"request body has a lone surrogate (an unpaired \\ud800-\\udfff escape) in {where}: "
                        "text must be valid Unicode") from None


def _walk(value, *, allow_lone_surrogates: bool) -> None:
    """Iteratively (no recursion) bound the nesting depth and check every string, keys included."""
    stack = [(value, 1, "the body")]
    while stack:
        item, depth, where = stack.pop()
        if isinstance(item, str):
            if not allow_lone_surrogates:
                _check_text(item, where)
        elif isinstance(item, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise BodyError(f"request body is nested deeper than {MAX_JSON_DEPTH} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    label = repr(key[:40]) if where == "the body" else f"{where}.{key[:40]}"
                    if not allow_lone_surrogates:
                        _check_text(key, f"a key of {where}")
                    stack.append((child, depth + 1, label))
            else:
                stack.extend((child, depth + 1, f"{where}[{i}]") for i, child in enumerate(item))


def parse_json_object(raw: bytes, *, allow_lone_surrogates: bool = False) -> dict:
    """The body as a JSON object, or BodyError(400) saying what is wrong: not UTF-8, not JSON, nested deeper than
    MAX_JSON_DEPTH, a number longer than MAX_NUMBER_CHARS, not an object, or (unless allowed) a lone
    surrogate in any string, which no model or database column can store as text."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(f"request body is not valid JSON: it is not UTF-8 ({exc})") from None
    try:
        body = json.loads(text, parse_int=_number, parse_float=_number)
    except BodyError:
        raise
    except RecursionError:
        raise BodyError(f"request body is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError, and int()'s digit limit should a number slip past _number
        raise BodyError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BodyError("request body must be a JSON object")
    _walk(body, allow_lone_surrogates=allow_lone_surrogates)
    return body
