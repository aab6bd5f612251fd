"""HTTP helpers the API routes share."""

from __future__ import annotations

from starlette.requests import Request


async def read_body(request: Request, limit: int) -> bytes:
    """Read at most `limit` + 1 bytes, so an oversized body is refused without buffering all of it."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ValueError(f"request body is larger than {limit:,} bytes")
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise ValueError(f"request body is larger than {limit:,} bytes")
    return bytes(body)
