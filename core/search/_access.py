"""The access filter: built only from a Principal, validated and escaped, applied as a LanceDB prefilter.

No user text ever enters the expression: group names must match a strict pattern (anything else is dropped, which
grants less, never more), clearance is an int 0-3, and every literal is quoted with its quotes doubled anyway.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.auth import ALL_STAFF, MAX_CLEARANCE, Principal
from core.errors import KeelError

GROUP_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class AccessDenied(KeelError, PermissionError):
    """A principal may not see a document (raised when a row fails the re-check)."""


def valid_group(name: object) -> bool:
    return isinstance(name, str) and bool(GROUP_PATTERN.fullmatch(name))


def sql_literal(value: str) -> str:
    """A single-quoted SQL string literal; refuses characters no valid identifier or id ever contains."""
    if not isinstance(value, str) or any(c in value for c in "\x00\\\n\r"):
        raise ValueError(f"refusing to quote {value!r} into a filter")
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class AccessFilter:
    groups: tuple[str, ...]  # sorted, validated, always includes all-staff
    clearance: int

    @property
    def expression(self) -> str:
        """The LanceDB (DataFusion SQL) prefilter: the chunk's groups intersect ours and its level is within ours."""
        listed = ", ".join(sql_literal(g) for g in self.groups)
        return f"array_has_any(access_groups, [{listed}]) AND clearance_level <= {int(self.clearance)}"

    def allows(self, access_groups, clearance_level) -> bool:
        """The same rule in Python, for re-checking every row and every cited source before it is shown."""
        try:
            level = int(clearance_level)
        except (TypeError, ValueError):
            return False
        return level <= self.clearance and bool(set(access_groups or ()) & set(self.groups))


def access_filter(principal: Principal) -> AccessFilter:
    """The filter for this principal: its valid groups plus all-staff, and its clearance clamped to 0-3."""
    if not isinstance(principal, Principal):
        raise TypeError("an access filter is built from a Principal only")
    groups = {g for g in principal.groups if valid_group(g)}
    groups.add(ALL_STAFF)
    clearance = principal.clearance
    if isinstance(clearance, bool) or not isinstance(clearance, int) or not 0 <= clearance <= MAX_CLEARANCE:
        clearance = 0
    return AccessFilter(groups=tuple(sorted(groups)), clearance=clearance)


def principal_for(user: str, groups, clearance) -> Principal:
    """A Principal for the command line and evals (the operator states groups and clearance; invalid ones drop)."""
    if isinstance(groups, str):
        groups = [g for g in groups.split(",")]
    cleaned = {g.strip().lower() for g in (groups or []) if isinstance(g, str)}
    bad = sorted(g for g in cleaned if g and not valid_group(g))
    if bad:
        raise ValueError(f"invalid group name(s) {bad}: use lower-case letters, digits, '.', '_' or '-'")
    if isinstance(clearance, bool) or not isinstance(clearance, int) or not 0 <= clearance <= MAX_CLEARANCE:
        raise ValueError(f"clearance must be an integer from 0 to {MAX_CLEARANCE}")
    return Principal(sub=user, name=user, groups=frozenset((cleaned - {""}) | {ALL_STAFF}), clearance=clearance,
                     roles=frozenset({"member"}))
