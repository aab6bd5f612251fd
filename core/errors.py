"""The root of Keel's errors, so a caller can tell "Keel refused or failed" from a bug with one `except KeelError`.

Each feature's errors derive from `KeelError` and, where callers already catch a builtin (ValueError,
PermissionError, RuntimeError…), from that builtin too, so existing handlers keep working. Imports nothing.
"""

from __future__ import annotations


class KeelError(Exception):
    """Something Keel refused or could not do; the message says what and, where it can, what to do."""
